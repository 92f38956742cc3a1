"""Starting a flow for participants on a staff member's word (`bot participants start`,
`add --start`, `import --start`).

Each participant gets a transaction of their own: their row is locked, consent and erasure
are checked under the lock, `conversation.start_flow` writes the session and leaves the
first messages in the outbox, and a staff-actor `participant.flow_started` entry is added
to their audit stream. The send jobs are queued once everything is committed; when Redis
does not answer, the rows wait in the outbox and the scheduler's sweep queues them.

During a participant's quiet hours nothing starts: a follow-up nudge starts the flow when
they end (audited as `participant.flow_scheduled`), so the first messages and the question's
re-prompt clock begin together in the morning.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError
from sqlmodel import Session, col, select

from . import audit, consent, conversation, nudges, outbox
from .config import Settings
from .engine.flow import Flow
from .flow_registry import FlowRegistry, UnknownFlow
from .nudges import load_study_schedule
from .schedule import QuietHours, ScheduleError, as_zone, defer
from .store.db import session_scope
from .store.models import ConversationSession, Participant
from .store.types import utcnow

ACTION = "participant.flow_started"
SCHEDULED = "participant.flow_scheduled"
_OPEN = ("waiting", "active")


class NotStartable(ValueError):
    """The flow cannot be started from here; the message says why."""


@dataclass(frozen=True, slots=True)
class Started:
    participant_id: int
    code: str
    session_id: str
    messages: tuple[int, ...]
    interrupted: tuple[str, ...]  # flow ids of the conversations this start cut short


@dataclass(frozen=True, slots=True)
class Scheduled:
    """Quiet hours were on: the flow starts when they end (a follow-up nudge), not now, so
    its first messages and its re-prompts do not pile up for the morning."""

    participant_id: int
    code: str
    at: datetime  # local


@dataclass(frozen=True, slots=True)
class Refused:
    participant_id: int
    code: str
    reason: str


@dataclass
class Report:
    flow_id: str
    version: int
    started: list[Started] = field(default_factory=list)
    scheduled: list[Scheduled] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    queued: int = 0  # send jobs queued for these messages
    redis_error: str | None = None  # set when the jobs could not be queued

    @property
    def message_ids(self) -> list[int]:
        return [m for s in self.started for m in s.messages]


def registry_for(settings: Settings) -> FlowRegistry:
    return FlowRegistry(settings.flows_dir)


def check_flow(settings: Settings, registry: FlowRegistry, flow_id: str) -> Flow:
    """The current version of `flow_id`, or NotStartable. Writes no participant data (the
    flow's version is stored, as any start or web process does)."""
    known = registry.current_ids()
    if flow_id not in known:
        raise NotStartable(f'no valid flow "{flow_id}" in {settings.flows_dir} '
                           f"(flows: {', '.join(known) or 'none'}); "
                           "`bot flows check` shows what is wrong with a flow file")
    with session_scope(settings.database_url) as db:
        try:
            flow = registry.current(db, flow_id)
        except UnknownFlow as exc:  # the file changed between the two looks
            raise NotStartable(str(exc)) from None
    if flow.params:
        # Started without them, its texts would show empty values.
        raise NotStartable(f'flow "{flow_id}" needs values the scheduler gives it '
                           f"({', '.join(flow.params)}); it cannot be started by hand")
    return flow


def never_started(db: Session) -> tuple[list[int], list[Refused]]:
    """Participants who have never had a conversation: those who may be messaged, and the
    opted-out ones (erased participants are left out altogether)."""
    had_one = select(ConversationSession.participant_id).distinct()
    rows = db.exec(select(Participant)
                   .where(col(Participant.erased_at).is_(None),
                          col(Participant.id).not_in(had_one))
                   .order_by(col(Participant.id))).all()
    ready = [p.id for p in rows if consent.may_message(p) and p.id is not None]
    opted_out = [Refused(p.id, p.code, "has opted out") for p in rows
                 if not consent.may_message(p) and p.id is not None]
    return ready, opted_out


def _quiet_until(p: Participant, now: datetime, quiet: QuietHours) -> datetime | None:
    """When quiet hours end, in the participant's time zone, if they are on now."""
    try:
        zone = as_zone(p.timezone or "UTC")
        until = defer(now, zone, quiet)
    except ScheduleError:
        return None  # a broken zone is the scheduler's to report
    return until.astimezone(zone) if until > now else None


def _start_one(settings: Settings, registry: FlowRegistry, flow_id: str, participant_id: int,
               actor: str, quiet: QuietHours) -> Started | Scheduled | Refused:
    with session_scope(settings.database_url) as db:
        # Locked before the checks, so a STOP or an erasure cannot slip in between.
        p = db.exec(select(Participant).where(Participant.id == participant_id)
                    .with_for_update().execution_options(populate_existing=True)).first()
        if p is None:
            return Refused(participant_id, str(participant_id), "is not enrolled")
        if p.erased_at is not None:
            return Refused(participant_id, p.code, f"was erased on {p.erased_at:%Y-%m-%d}")
        if not consent.may_message(p):
            return Refused(participant_id, p.code, "has opted out")
        now = utcnow()
        quiet_until = _quiet_until(p, now, quiet)
        if quiet_until is not None:
            nudges.schedule_start(db, participant_id, flow_id, quiet_until, now)
            audit.record(db, actor=actor, action=SCHEDULED, entity="participant",
                         entity_id=p.id, at=now,
                         new={"flow_id": flow_id, "due_at": quiet_until.isoformat(),
                              "reason": "quiet hours"})
            return Scheduled(participant_id, p.code, quiet_until)
        interrupted = tuple(db.exec(
            select(ConversationSession.flow_id)
            .where(ConversationSession.participant_id == participant_id,
                   col(ConversationSession.status).in_(_OPEN))).all())
        messages = conversation.start_flow(db, p, flow_id, now, settings=settings,
                                           registry=registry)
        session = db.exec(
            select(ConversationSession)
            .where(ConversationSession.participant_id == participant_id,
                   ConversationSession.flow_id == flow_id)
            .order_by(col(ConversationSession.created_at).desc())).first()
        assert session is not None  # start_flow wrote it: the participant may be messaged
        audit.record(db, actor=actor, action=ACTION, entity="participant", entity_id=p.id,
                     at=now, new={"flow_id": flow_id, "flow_version": session.flow_version,
                                  "session_id": session.id, "messages": len(messages),
                                  "interrupted": list(interrupted)})
        ids = tuple(m.id for m in messages if m.id is not None)
        return Started(participant_id, p.code, session.id, ids, interrupted)


def start(settings: Settings, registry: FlowRegistry, flow: Flow,
          participant_ids: Iterable[int], *, actor: str) -> Report:
    """Start `flow` for each participant, then queue the send jobs for what was committed."""
    report = Report(flow.id, flow.version)
    quiet = load_study_schedule(settings.flows_dir).quiet
    try:
        for pid in participant_ids:
            try:
                result = _start_one(settings, registry, flow.id, pid, actor, quiet)
            except UnknownFlow as exc:  # the file was removed or broken meanwhile
                result = Refused(pid, str(pid), str(exc))
            if isinstance(result, Started):
                report.started.append(result)
            elif isinstance(result, Scheduled):
                report.scheduled.append(result)
            else:
                report.refused.append(result)
    finally:
        # Even after an error: what was committed goes out now rather than at the sweep.
        _queue(settings, report)
    return report


def _queue(settings: Settings, report: Report) -> None:
    ids = report.message_ids
    if not ids:
        return
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2.0, socket_timeout=5.0)
    try:
        report.queued = outbox.dispatch_after_commit(ids, redis,
                                                     batch_size=settings.outbox_batch_size)
    except RedisError as exc:
        report.redis_error = type(exc).__name__
    finally:
        redis.close()
