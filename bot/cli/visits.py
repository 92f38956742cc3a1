"""`bot visits`: schedule, move, complete and cancel study visits; reminders follow them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NoReturn

import click
import sqlalchemy as sa
from sqlmodel import Session, col, select

from ..store.db import session_scope
from ..store.models import Nudge, Participant, Visit
from ..store.types import utcnow
from .db import open_database
from .groups import main

actor_option = click.option("--actor", metavar="NAME",
                            help="Your name for the audit trail (default: your OS user).")
at_option = click.option("--at", "at", required=True, metavar="WHEN",
                         help="Date and time, e.g. '2026-03-10 09:30' in the participant's "
                         "time zone, or with an offset: 2026-03-10T09:30-08:00.")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(1)


def _when(text: str, zone: str) -> datetime:
    from ..schedule import ScheduleError, local_at

    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        _fail(f"`{text}` is not a date and time; write e.g. 2026-03-10 09:30")
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    try:
        # The participant's wall clock, with the usual rules for DST gaps and repeats.
        return local_at(parsed.date(), parsed.strftime("%H:%M"), zone)
    except ScheduleError as exc:
        _fail(str(exc))


def _participant(s: Session, code: str) -> Participant:
    p = s.exec(select(Participant).where(Participant.code == code)).first()
    if p is None:
        _fail(f"no participant with code {code}")
    return p


def _visit(s: Session, visit_id: int) -> tuple[Visit, Participant]:
    v = s.get(Visit, visit_id)
    if v is None:
        _fail(f"no visit {visit_id}")
    p = s.get(Participant, v.participant_id)
    assert p is not None
    return v, p


def _local(when: datetime, zone: str) -> str:
    from ..schedule import ScheduleError, as_zone

    try:
        return when.astimezone(as_zone(zone)).strftime("%a %Y-%m-%d %H:%M %Z")
    except ScheduleError:
        return when.strftime("%a %Y-%m-%d %H:%M UTC")


def _reminders(s: Session, visit_id: int) -> list[datetime]:
    rows = s.exec(select(Nudge.due_at).where(Nudge.visit_id == visit_id,
                                             Nudge.status == "pending")
                  .order_by(col(Nudge.due_at))).all()
    return list(rows)


def _show_reminders(s: Session, v: Visit, zone: str) -> None:
    assert v.id is not None
    dues = _reminders(s, v.id)
    if not dues:
        click.echo("  no reminders to come (too close, or the participant cannot be messaged)")
    for due in dues:
        click.echo(f"  reminder {_local(due, zone)}")


@main.group("visits")
def visits_group() -> None:
    """Schedule study visits; reminders go out at the study's `visit_reminders` offsets."""


@visits_group.command("add")
@click.argument("code")
@at_option
@click.option("--name", default="Study visit", show_default=True, help="What the visit is.")
@actor_option
@click.pass_context
def add(ctx: click.Context, code: str, at: str, name: str, actor: str | None) -> None:
    """Schedule a visit for participant CODE and plan its reminders."""
    from .. import nudges, visits
    from ..participants_io import staff_actor

    settings = open_database(ctx)
    study = nudges.load_study_schedule(settings.flows_dir)
    with session_scope(settings.database_url) as s:
        p = _participant(s, code)
        try:
            v = visits.add(s, p, name=name, scheduled_at=_when(at, p.timezone),
                           actor=staff_actor(actor), now=utcnow(), study=study)
        except visits.VisitError as exc:
            _fail(str(exc))
        click.echo(f"visit {v.id} for {p.code}: {v.name}, {_local(v.scheduled_at, p.timezone)}")
        _show_reminders(s, v, p.timezone)


@visits_group.command("reschedule")
@click.argument("visit_id", type=int)
@at_option
@actor_option
@click.pass_context
def reschedule(ctx: click.Context, visit_id: int, at: str, actor: str | None) -> None:
    """Move visit VISIT_ID; its reminders move with it."""
    from .. import nudges, visits
    from ..participants_io import staff_actor

    settings = open_database(ctx)
    study = nudges.load_study_schedule(settings.flows_dir)
    with session_scope(settings.database_url) as s:
        v, p = _visit(s, visit_id)
        try:
            visits.reschedule(s, v, _when(at, p.timezone), actor=staff_actor(actor),
                              now=utcnow(), study=study)
        except visits.VisitError as exc:
            _fail(str(exc))
        click.echo(f"visit {v.id} for {p.code} moved to {_local(v.scheduled_at, p.timezone)}")
        _show_reminders(s, v, p.timezone)


def _close(ctx: click.Context, visit_id: int, actor: str | None, done: bool) -> None:
    from .. import visits
    from ..participants_io import staff_actor

    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        v, p = _visit(s, visit_id)
        close = visits.complete if done else visits.cancel
        try:
            cancelled = close(s, v, actor=staff_actor(actor), now=utcnow())
        except visits.VisitError as exc:
            _fail(str(exc))
        click.echo(f"visit {v.id} for {p.code} {v.status}; "
                   f"{cancelled} pending reminder{'s' if cancelled != 1 else ''} cancelled")


@visits_group.command("complete")
@click.argument("visit_id", type=int)
@actor_option
@click.pass_context
def complete(ctx: click.Context, visit_id: int, actor: str | None) -> None:
    """Mark visit VISIT_ID as done; its pending reminders are cancelled."""
    _close(ctx, visit_id, actor, done=True)


@visits_group.command("cancel")
@click.argument("visit_id", type=int)
@actor_option
@click.pass_context
def cancel(ctx: click.Context, visit_id: int, actor: str | None) -> None:
    """Cancel visit VISIT_ID; its pending reminders are cancelled."""
    _close(ctx, visit_id, actor, done=False)


@visits_group.command("list")
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="Include completed and cancelled visits.")
@click.pass_context
def list_(ctx: click.Context, code: str | None, show_all: bool) -> None:
    """Visits (of participant CODE), in participant-local time."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        query = (select(Visit, Participant)
                 .join(Participant, col(Participant.id) == col(Visit.participant_id))
                 .order_by(col(Visit.scheduled_at)))
        if code:
            query = query.where(Participant.code == _participant(s, code).code)
        if not show_all:
            query = query.where(Visit.status == "scheduled")
        rows = s.exec(query).all()
        counts = dict(s.exec(
            select(Nudge.visit_id, sa.func.count())
            .where(col(Nudge.visit_id).is_not(None), Nudge.status == "pending")
            .group_by(col(Nudge.visit_id))).all())
    if not rows:
        click.echo("no visits")
        return
    header = ("ID", "CODE", "VISIT", "WHEN (LOCAL)", "STATUS", "REMINDERS")
    table = [header] + [
        (str(v.id), p.code, v.name, _local(v.scheduled_at, p.timezone), v.status,
         str(counts.get(v.id, 0))) for v, p in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
