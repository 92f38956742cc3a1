"""Study visits: add, reschedule, complete, cancel. Each change is audited and keeps the
visit's reminder nudges true: a moved visit's reminders move with it (the old ones are
cancelled and new ones planned for the new time), a completed or cancelled visit's pending
reminders are cancelled. The caller commits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from . import audit, nudges
from .store.models import Participant, Visit

SCHEDULED, COMPLETED, CANCELLED = "scheduled", "completed", "cancelled"
NAME_MAX = 80


class VisitError(ValueError):
    """A change that cannot be made, said in plain words."""


def _snapshot(v: Visit) -> dict[str, Any]:
    return {"participant_id": v.participant_id, "name": v.name,
            "scheduled_at": v.scheduled_at.astimezone(UTC).isoformat(), "status": v.status}


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise VisitError("a visit time needs its time zone")
    return when.astimezone(UTC)


def _record(db: Session, actor: str, action: str, v: Visit, now: datetime,
            old: dict[str, Any] | None) -> None:
    audit.record(db, actor=actor, action=action, entity="visit", entity_id=v.id,
                 old=old, new=_snapshot(v), at=now)


def _plan(db: Session, v: Visit, now: datetime, study: nudges.StudySchedule) -> int:
    assert v.id is not None
    return nudges.plan_visit_reminders(db, now, study, visit_ids=[v.id]).planned


def add(db: Session, participant: Participant, *, name: str, scheduled_at: datetime,
        actor: str, now: datetime, study: nudges.StudySchedule) -> Visit:
    """Schedule a visit and plan its reminders."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise VisitError(f"a visit needs a name of 1 to {NAME_MAX} characters")
    when = _aware(scheduled_at)
    assert participant.id is not None
    v = Visit(participant_id=participant.id, name=name, scheduled_at=when,
              status=SCHEDULED, created_at=now, updated_at=now)
    db.add(v)
    db.flush()
    _record(db, actor, "visit.add", v, now, None)
    _plan(db, v, now, study)
    return v


def _require_scheduled(v: Visit) -> None:
    if v.status != SCHEDULED:
        raise VisitError(f"visit {v.id} is {v.status}; only a scheduled visit can change")


def reschedule(db: Session, v: Visit, scheduled_at: datetime, *, actor: str, now: datetime,
               study: nudges.StudySchedule) -> int:
    """Move a visit; its pending reminders are replaced by ones for the new time.

    Returns how many reminders are planned for the new time.
    """
    _require_scheduled(v)
    when = _aware(scheduled_at)
    if when == v.scheduled_at:
        return 0
    old = _snapshot(v)
    assert v.id is not None
    nudges.cancel_visit_reminders(db, v.id, now)
    v.scheduled_at, v.updated_at = when, now
    db.add(v)
    db.flush()
    _record(db, actor, "visit.reschedule", v, now, old)
    return _plan(db, v, now, study)


def _close(db: Session, v: Visit, status: str, *, actor: str, now: datetime) -> int:
    _require_scheduled(v)
    old = _snapshot(v)
    assert v.id is not None
    cancelled = nudges.cancel_visit_reminders(db, v.id, now)
    v.status, v.updated_at = status, now
    db.add(v)
    db.flush()
    _record(db, actor, f"visit.{'complete' if status == COMPLETED else 'cancel'}", v, now, old)
    return cancelled


def complete(db: Session, v: Visit, *, actor: str, now: datetime) -> int:
    """The visit happened; returns how many pending reminders were cancelled."""
    return _close(db, v, COMPLETED, actor=actor, now=now)


def cancel(db: Session, v: Visit, *, actor: str, now: datetime) -> int:
    """The visit will not happen; returns how many pending reminders were cancelled."""
    return _close(db, v, CANCELLED, actor=actor, now=now)
