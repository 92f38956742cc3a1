"""`bot escalations`: list, show, acknowledge, resolve and report on escalations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
import sqlalchemy as sa
from sqlmodel import col, select

from .. import escalation as esc_mod
from .. import participants_io as pio
from ..store.db import session_scope
from ..store.models import AuditEntry, Escalation, Participant
from ..store.types import utcnow
from .db import open_database
from .groups import main

STATES = ("open", "acknowledged", "resolved", "all")


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = [tuple(header), *[tuple(r) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _by(name: str | None) -> str:
    return pio.staff_actor(name).removeprefix("staff:")


def _now(value: datetime | None) -> datetime:
    return value.replace(tzinfo=value.tzinfo or UTC) if value is not None else utcnow()


@main.group("escalations")
def escalations_group() -> None:
    """Escalations to nurse navigators: list, show, acknowledge, resolve, report."""


@escalations_group.command("list")
@click.option("--state", type=click.Choice(STATES), default="all", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="How many of the newest.")
@click.pass_context
def list_(ctx: click.Context, state: str, limit: int) -> None:
    """The newest escalations (times in UTC)."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        query = select(Escalation, Participant).join(
            Participant, col(Participant.id) == col(Escalation.participant_id))
        if state != "all":
            query = query.where(Escalation.state == state)
        rows = s.exec(query.order_by(col(Escalation.id).desc()).limit(limit)).all()
    if not rows:
        click.echo("no escalations")
        return
    _table(("CODE", "RAISED", "PARTICIPANT", "SEVERITY", "REASON", "STATE", "LEVEL",
            "REPEATS", "NEXT ALERT / BY"),
           [(e.code, _when(e.created_at), p.code, e.severity, e.reason, e.state,
             str(e.level), str(e.repeats),
             _when(e.next_alert_at) if e.state == "open" else (e.acknowledged_by or "-"))
            for e, p in rows])


@escalations_group.command("show")
@click.argument("code")
@click.pass_context
def show(ctx: click.Context, code: str) -> None:
    """One escalation: its state, its alerts and its audit trail."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        esc = esc_mod.find(s, code)
        if esc is None:
            raise click.ClickException(f"no escalation {code.upper()}")
        p = s.get(Participant, esc.participant_id)
        info = dict(esc_mod.describe(esc, p.code if p else None))
        alerts = esc_mod.alerts_of(s, esc)
        trail = s.exec(select(AuditEntry).where(AuditEntry.entity == "escalation",
                                                AuditEntry.entity_id == esc.code)
                       .order_by(col(AuditEntry.id))).all()
    for key, value in info.items():
        click.echo(f"{key + ':':17} {value if value is not None else '-'}")
    click.echo("\nalerts:")
    if not alerts:
        click.echo("  none")
    for a, n in alerts:
        click.echo(f"  level {a.level}  {a.channel:8} {n.name:12} {a.status:9} "
                   f"attempts {a.attempts}  sent {_when(a.sent_at)}"
                   + (f"  ({a.last_error})" if a.last_error else ""))
    click.echo("\ntrail:")
    for entry in trail:
        click.echo(f"  {entry.at.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')}  "
                   f"{entry.action:28} {entry.actor:24} {entry.new_json or ''}")


@escalations_group.command("ack")
@click.argument("code")
@click.option("--by", "by", metavar="NAME", help="Who takes it (default: your OS user).")
@click.pass_context
def ack(ctx: click.Context, code: str, by: str | None) -> None:
    """Acknowledge an escalation: the alerts stop climbing."""
    settings = open_database(ctx)
    name = _by(by)
    with session_scope(settings.database_url) as s:
        result = esc_mod.acknowledge(s, code, by=name, via="cli", now=utcnow())
        esc = result.escalation
    if result.status == "unknown" or esc is None:
        raise click.ClickException(f"no escalation {code.upper()}")
    if result.status == "already":
        click.echo(f"{esc.code} was acknowledged already by {esc.acknowledged_by} at "
                   f"{_when(esc.acknowledged_at)} UTC")
    elif result.status == "resolved":
        click.echo(f"{esc.code} is resolved already")
    else:
        click.echo(f"{esc.code} acknowledged by {name}")


@escalations_group.command("resolve")
@click.argument("code")
@click.option("--note", required=True, help="What was done (kept with the escalation).")
@click.option("--by", "by", metavar="NAME", help="Who resolves it (default: your OS user).")
@click.pass_context
def resolve(ctx: click.Context, code: str, note: str, by: str | None) -> None:
    """Close an escalation with a note (acknowledging it too if nobody had)."""
    settings = open_database(ctx)
    try:
        with session_scope(settings.database_url) as s:
            esc = esc_mod.resolve(s, code, note=note, by=_by(by), now=utcnow())
    except esc_mod.EscalationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{esc.code} resolved")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.1f} min"
    return f"{minutes / 60:.1f} h"


@escalations_group.command("report")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only escalations raised "
              "on or after this day (UTC).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def report(ctx: click.Context, since: datetime | None, fmt: str) -> None:
    """Time to acknowledge and to resolve, per severity: median, 90th percentile, count."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        data = esc_mod.report(s, since.replace(tzinfo=UTC) if since else None)
    if fmt == "json":
        out: dict[str, Any] = {}
        for severity, row in data.items():
            out[severity] = {"raised": row["raised"], "open": row["open"],
                             **{k: {"count": row[k].count, "median_seconds": row[k].median_s,
                                    "p90_seconds": row[k].p90_s}
                                for k in ("acknowledge", "resolve")}}
        click.echo(json.dumps(out, indent=2))
        return
    _table(("SEVERITY", "RAISED", "OPEN", "ACKED", "ACK MEDIAN", "ACK P90", "RESOLVED",
            "RESOLVE MEDIAN", "RESOLVE P90"),
           [(severity, str(row["raised"]), str(row["open"]),
             str(row["acknowledge"].count), _duration(row["acknowledge"].median_s),
             _duration(row["acknowledge"].p90_s), str(row["resolve"].count),
             _duration(row["resolve"].median_s), _duration(row["resolve"].p90_s))
            for severity, row in data.items()])


@escalations_group.command("check")
@click.option("--now", "now", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
              help="Act as if it were this UTC time (for drills).")
@click.pass_context
def check(ctx: click.Context, now: datetime | None) -> None:
    """Page escalations that were waiting (business hours, nobody on call), climb overdue
    ones and send due email alerts, once (the scheduler does this every few seconds)."""
    settings = open_database(ctx)
    result = esc_mod.check_escalations(settings, _now(now))
    click.echo(f"paged {len(result.paged)}, climbed {len(result.climbed)}, unanswered at the top "
               f"{len(result.unanswered)}; emails sent {result.emails.sent}, "
               f"retrying {result.emails.retrying}, failed {result.emails.failed}")
    with session_scope(settings.database_url) as s:
        waiting = s.exec(select(sa.func.count()).select_from(Escalation)
                         .where(Escalation.state == "open")).one()
    click.echo(f"{waiting} escalation(s) open, not acknowledged")
