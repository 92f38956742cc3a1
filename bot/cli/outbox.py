"""`bot outbox`: what is waiting, what went out, what failed and why. No message text shown."""

from __future__ import annotations

import json
import time

import click
from sqlmodel import col, select

from .. import outbox as ob
from .. import participants_io as pio
from ..store.db import session_scope
from ..store.models import AuditEntry, Message
from .db import open_database
from .groups import main


@main.group("outbox")
def outbox_group() -> None:
    """Inspect and sweep the outbound message queue."""


def _row(m: Message) -> str:
    code = f" {m.error_code}" if m.error_code else ""
    dup = " possible-duplicate" if m.possible_duplicate else ""
    when = (m.sent_at or m.due_at or m.created_at).strftime("%Y-%m-%d %H:%M:%S")
    why = f"  {m.last_error}" if m.last_error else ""
    return (f"{m.id:>8}  {m.status:<13}{code:<6} {m.channel:<8} {m.kind:<7} "
            f"p={m.participant_id or '-':<6} try={m.attempts} {when}{dup}{why}")


@outbox_group.command("list")
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Only these statuses (repeatable): pending, sending, queued, sent, "
              "delivered, failed, undelivered, undeliverable, suppressed, cancelled...")
@click.option("--problems", is_flag=True,
              help=f"Only messages that will not arrive: {', '.join(ob.PROBLEMS)}.")
@click.option("--participant", metavar="ID_OR_CODE", help="Only this participant's messages.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def list_(ctx: click.Context, statuses: tuple[str, ...], problems: bool,
          participant: str | None, limit: int, as_json: bool) -> None:
    """The newest outbound messages, newest first."""
    settings = open_database(ctx)
    wanted = set(statuses) | (set(ob.PROBLEMS) if problems else set())
    with session_scope(settings.database_url) as s:
        query = select(Message).where(Message.direction == "out")
        if wanted:
            query = query.where(col(Message.status).in_(sorted(wanted)))
        if participant is not None:
            p = pio.find(s, participant)
            if p is None:
                raise click.ClickException(f'no participant "{participant}"')
            query = query.where(Message.participant_id == p.id)
        rows = s.exec(query.order_by(col(Message.id).desc()).limit(limit)).all()
    if as_json:
        for m in rows:
            click.echo(json.dumps(ob.describe(m), ensure_ascii=False))
        return
    if not rows:
        click.echo("no messages")
        return
    for m in rows:
        click.echo(_row(m))


@outbox_group.command("show")
@click.argument("message_id", type=int)
@click.pass_context
def show(ctx: click.Context, message_id: int) -> None:
    """One outbound message: status, error, attempts, and its audit entries."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        m = s.get(Message, message_id)
        if m is None or m.direction != "out":
            raise click.ClickException(f"no outbound message {message_id}")
        entries = s.exec(select(AuditEntry).where(AuditEntry.entity == "message",
                                                  AuditEntry.entity_id == str(message_id))
                         .order_by(col(AuditEntry.id))).all()
    for key, value in ob.describe(m).items():
        if value is not None and value is not False:
            click.echo(f"{key:>18}: {value}")
    for e in entries:
        click.echo(f"{'audit':>18}: {e.at:%Y-%m-%d %H:%M:%S} {e.action} {e.new_json or ''}")


@outbox_group.command("sweep")
@click.option("--every", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="Keep sweeping this often (0: once).")
@click.pass_context
def sweep(ctx: click.Context, every: float) -> None:
    """Enqueue due, unsent messages that have no job (after a crash or a Redis flush)."""
    from redis import Redis

    from workers.sweep import sweep_outbox

    settings = open_database(ctx)
    redis = Redis.from_url(settings.redis_url)
    while True:
        count = sweep_outbox(settings, redis)
        click.echo(f"enqueued {count} message{'s' if count != 1 else ''}")
        if not every:
            return
        time.sleep(every)
