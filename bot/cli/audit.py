"""`bot audit`: check the audit trail's hash chain and read it."""

from __future__ import annotations

import click
import sqlalchemy as sa
from sqlmodel import col, select

from .. import audit as trail
from .. import participants_io as pio
from ..store.db import session_scope
from ..store.models import AuditEntry
from .db import open_database
from .groups import main


@main.group("audit")
def audit_group() -> None:
    """Check and read the audit trail."""


@audit_group.command("verify")
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Check that no entry was edited, deleted or inserted, and that every answer is still
    the one its entry recorded (exit 1 if not).

    Prints a fingerprint of every stream's head: kept somewhere else, it shows later whether
    the heads themselves were rewritten. Answers are checked against the digests in their
    entries, which takes the bot's SECRET_KEY.
    """
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        breaks = trail.verify(s)
        answers = trail.verify_answers(s, settings.secret_key)
        count = s.exec(select(sa.func.count()).select_from(AuditEntry)).one()
        head = trail.head(s)
    for b in breaks:
        where = f"entry {b.entry_id}" if b.entry_id is not None else "chain head"
        click.echo(f"BROKEN at {where}: {b.message}")
    for p in answers.problems:
        where = f"answer {p.answer_id}" if p.answer_id is not None else "answers"
        click.echo(f"MISMATCH at {where}: {p.message}")
    problems = len(breaks) + len(answers.problems)
    if problems:
        click.echo(f"{_n(problems, 'problem')} in {count} entries and "
                   f"{_n(answers.checked, 'answer')}")
        ctx.exit(1)
    streams = head.streams if head is not None else 0
    click.echo(f"OK: {count} entries, chain intact"
               + (f" ({streams} stream{'s' if streams != 1 else ''}, fingerprint {head.hash})"
                  if head is not None else ""))
    if answers.checked or answers.erased:
        click.echo(f"OK: {_n(answers.checked, 'answer')} as recorded"
                   + (f" ({_n(answers.erased, 'free-text answer')} erased on purpose)"
                      if answers.erased else ""))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


@audit_group.command("list")
@click.option("--participant", metavar="ID_OR_CODE", help="Only entries about this participant.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="How many of the newest entries.")
@click.pass_context
def list_(ctx: click.Context, participant: str | None, limit: int) -> None:
    """The newest entries, oldest first."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        query = select(AuditEntry)
        if participant is not None:
            p = pio.find(s, participant)
            if p is None:
                raise click.ClickException(f'no participant "{participant}"')
            query = query.where(trail.about(p))
        entries = list(reversed(s.exec(query.order_by(col(AuditEntry.id).desc())
                                       .limit(limit)).all()))
    if not entries:
        click.echo("no entries")
        return
    for e in entries:
        change = " ".join(part for part in (
            f"old={e.old_json}" if e.old_json else "",
            f"new={e.new_json}" if e.new_json else "") if part)
        click.echo(f"{e.id:>6}  {e.at:%Y-%m-%d %H:%M:%S}Z  {e.actor}  {e.action}  "
                   f"{e.entity}:{e.entity_id}  {change}".rstrip())
