"""The imperative shell around the pure engine: load, step, persist. One transaction per call.

`handle_inbound` is the webhook's whole job once the request is known to be Twilio's:
lock the participant, store the message once, run the engine (or enforce a keyword), turn
the events into rows and return the texts for the TwiML reply. `start_flow` starts a flow
(workers and tests use it) and leaves its messages in the outbox. The caller commits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from . import audit, consent, logs, participants, system_messages
from .config import Settings
from .engine import runner, understand
from .engine import session as es
from .engine.events import (
    AnswerRecorded,
    EscalationRaised,
    Event,
    FieldSet,
    FlowFailed,
    FollowUpScheduled,
    KeywordSeen,
    MessageCreated,
    SessionEnded,
)
from .engine.languages import SUPPORTED, primary
from .engine.localizer import Localizer
from .engine.segments import segments
from .flow_registry import FlowRegistry
from .flow_registry import default as default_registry
from .store.models import (
    Answer,
    ConversationSession,
    Escalation,
    Message,
    Participant,
    StatusCallback,
    UnknownSenderReply,
)
from .twilio_io import Inbound, StatusUpdate

_log = logs.get_logger("conversation")

#: Participant columns a flow's `set:` may write; every other name goes to the extra fields.
_COLUMN_FIELDS = ("language", "checkin_time", "timezone")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
#: Escalation codes are typed by navigators (`ACK E7K2Q`): no 0/O, 1/I/L look-alikes.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_SEVERITY_RANK = {"routine": 0, "high": 1, "urgent": 2}
_OPEN_ESCALATION = ("open", "acknowledged")


@dataclass(slots=True)
class Outcome:
    """What happened to one inbound message, for the reply and the log line."""

    result: str  # replied | duplicate | unknown_sender | silenced | opt_out_recorded | ...
    replies: list[str] = field(default_factory=list)
    participant_code: str | None = None
    message_id: int | None = None


# ---- small helpers ------------------------------------------------------------------------


def catalogs_for(settings: Settings) -> Callable[[str], Localizer]:
    default = settings.default_language

    def catalogs(language: str) -> Localizer:
        return system_messages.catalogs_with_fallback(language, default)

    return catalogs


def engine_participant(p: Participant) -> es.Participant:
    """What the engine may see: an internal id, language, zone and extra fields; no phone."""
    return es.Participant(id=str(p.id), language=p.language, timezone=p.timezone,
                          fields=participants.fields(p))


def _insert_ignore(db: Session, table: Any, values: Mapping[str, Any],
                   conflict: list[str]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new id, or None for a duplicate.

    The unique constraint decides, so concurrent duplicates cannot both get through, and
    nothing is raised that would abort a PostgreSQL transaction.
    """
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    row = db.execute(stmt.returning(table.c.id)).first()
    return None if row is None else int(row[0])


def phone_hash(secret_key: str, phone: str) -> str:
    return hmac.new(secret_key.encode(), phone.encode(), hashlib.sha256).hexdigest()


def _lock_participant_by_phone(db: Session, phone: str) -> Participant | None:
    # FOR UPDATE serialises messages of one participant on PostgreSQL; SQLite's BEGIN
    # IMMEDIATE already serialises every writer, and SQLAlchemy leaves the clause out there.
    stmt = select(Participant).where(Participant.phone == phone).with_for_update()
    return db.exec(stmt.execution_options(populate_existing=True)).first()


def _lock_participant(db: Session, participant_id: int) -> Participant | None:
    stmt = select(Participant).where(Participant.id == participant_id).with_for_update()
    return db.exec(stmt.execution_options(populate_existing=True)).first()


def _outbound(p: Participant, text: str, *, kind: str, status: str, now: datetime,
              channel: str, sender: str | None, language: str, session_id: str | None = None,
              step: str | None = None, reply_to_id: int | None = None) -> Message:
    return Message(
        participant_id=p.id, direction="out", channel=channel, address=p.phone, sender=sender,
        body=text, kind=kind, status=status, session_id=session_id, step=step,
        language=language, segments=segments(text), due_at=now,
        sent_at=now if status == "sent" else None, reply_to_id=reply_to_id,
        created_at=now, updated_at=now)


def _sender(settings: Settings, channel: str, to: str | None = None) -> str | None:
    if to:
        return to
    if channel == "whatsapp" and settings.whatsapp_from:
        return f"whatsapp:{settings.whatsapp_from}"
    return settings.sms_from


# ---- applying engine events -----------------------------------------------------------------


@dataclass(slots=True)
class _Delivery:
    """Where the engine's messages go: back in the TwiML reply, or into the outbox."""

    channel: str
    sender: str | None
    status: str  # "sent" for TwiML replies, "pending" for the outbox
    kind: str  # "reply" | "nudge"
    reply_to_id: int | None = None


@dataclass(slots=True)
class _Step:
    db: Session
    settings: Settings
    p: Participant
    row: ConversationSession
    before: es.Session
    after: es.Session
    events: list[Event]
    now: datetime
    delivery: _Delivery
    catalogs: Callable[[str], Localizer]
    texts: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


def _apply(step: _Step) -> None:
    """Turn the engine's events into rows, in event order."""
    db, p, now = step.db, step.p, step.now
    who = consent.actor(p)
    assert p.id is not None
    loc = step.catalogs(step.before.language)
    answers: list[tuple[Any, AnswerRecorded]] = []
    field_changes: dict[str, Any] = {}
    extra_fields: dict[str, Any] = {}
    stopped = False
    for event in step.events:
        if isinstance(event, KeywordSeen):
            result = consent.apply_keyword(
                db, p, event.keyword, event.language, now=now,
                message_id=step.delivery.reply_to_id, contact=step.settings.study_contact,
                default_language=step.settings.default_language,
                # The engine re-asks the open question in the new language itself.
                announce_language=False)
            stopped = stopped or event.keyword == "stop"
            for key, text in result.replies:
                _say(step, text, kind="system", language=p.language, step_id=None,
                     force=key == "stop_confirmed")
        elif isinstance(event, MessageCreated):
            if not stopped:
                _say(step, event.text, kind="safety" if event.urgent else step.delivery.kind,
                     language=event.language, step_id=event.step)
        elif isinstance(event, AnswerRecorded):
            answer = Answer(
                participant_id=p.id, session_id=step.row.id, flow_id=step.row.flow_id,
                flow_version=step.row.flow_version, translation_revision=loc.revision,
                language=loc.language, step=event.step, key=event.key,
                answer_type=event.answer_type,
                value_json=json.dumps(event.value, ensure_ascii=False, default=str),
                message_id=step.delivery.reply_to_id, recorded_at=now)
            db.add(answer)
            answers.append((answer, event))
        elif isinstance(event, FieldSet):
            _field(event, field_changes, extra_fields)
        elif isinstance(event, EscalationRaised):
            _escalate(db, p, step.row, event, now)
        elif isinstance(event, FollowUpScheduled):
            # Outbound scheduling is the workers' job; the session state keeps what is due.
            logs.event(_log, "follow_up_requested", flow=event.flow, step=event.step,
                       due_at=event.due_at.isoformat(), participant=p.code)
        elif isinstance(event, FlowFailed):
            logs.event(_log, "flow_failed", level=40, flow=step.row.flow_id,
                       version=step.row.flow_version, step=event.step, reason=event.reason,
                       participant=p.code)
        elif isinstance(event, SessionEnded):
            step.row.ended_at = now
    if answers:
        db.flush()  # answer ids for the audit entries
        for answer, event in answers:
            audit.record(db, actor=who, action="answer.recorded", entity="answer",
                         entity_id=answer.id, at=now,
                         new={"flow_id": step.row.flow_id, "flow_version": step.row.flow_version,
                              "session_id": step.row.id, "step": event.step, "key": event.key,
                              "value": event.value})
    if extra_fields:
        field_changes["fields"] = extra_fields
    if field_changes:
        participants.update(db, p, actor=who, action="participant.flow_set", **field_changes)
    _save_session(step)


def _say(step: _Step, text: str, *, kind: str, language: str, step_id: str | None,
         force: bool = False) -> None:
    if not force and not consent.may_message(step.p):
        return
    d = step.delivery
    step.texts.append(text)
    msg = _outbound(step.p, text, kind=kind, status=d.status, now=step.now, channel=d.channel,
                    sender=d.sender, language=language, session_id=step.row.id, step=step_id,
                    reply_to_id=d.reply_to_id)
    step.db.add(msg)
    step.messages.append(msg)


def _field(event: FieldSet, columns: dict[str, Any], extra: dict[str, Any]) -> None:
    name, value = event.field, event.value
    if name not in _COLUMN_FIELDS:
        extra[name] = value
        return
    valid = {
        "language": lambda v: isinstance(v, str) and primary(v) in SUPPORTED,
        "checkin_time": lambda v: isinstance(v, str) and bool(_HHMM.match(v)),
        "timezone": _valid_timezone,
    }[name]
    if valid(value):
        columns[name] = primary(value) if name == "language" else value
    else:
        logs.event(_log, "field_value_refused", level=30, field=name)


def _valid_timezone(name: object) -> bool:
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return False
    return True


def _new_code(db: Session) -> str:
    for _ in range(10):
        code = "E" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(4))
        if db.exec(select(Escalation.id).where(Escalation.code == code)).first() is None:
            return code
    return "E" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(7))


def _escalate(db: Session, p: Participant, row: ConversationSession, event: EscalationRaised,
              now: datetime) -> Escalation:
    """One open escalation per participant and reason; a repeat counts on the open one."""
    assert p.id is not None
    existing = db.exec(
        select(Escalation).where(Escalation.participant_id == p.id,
                                 Escalation.reason == event.reason,
                                 col(Escalation.state).in_(_OPEN_ESCALATION))
        .order_by(col(Escalation.id)).limit(1)).first()
    if existing is not None:
        existing.repeats += 1
        if _SEVERITY_RANK.get(event.severity, 0) > _SEVERITY_RANK.get(existing.severity, 0):
            existing.severity = event.severity
        existing.updated_at = now
        db.add(existing)
        logs.event(_log, "escalation_repeated", code=existing.code, reason=event.reason,
                   severity=existing.severity, participant=p.code)
        return existing
    esc = Escalation(code=_new_code(db), participant_id=p.id, session_id=row.id,
                     flow_id=event.flow, step=event.step, severity=event.severity,
                     reason=event.reason, next_alert_at=now, created_at=now, updated_at=now)
    db.add(esc)
    logs.event(_log, "escalation_raised", code=esc.code, reason=event.reason,
               severity=event.severity, participant=p.code)
    return esc


def _save_session(step: _Step) -> None:
    row, state = step.row, step.after
    row.state_json = state.to_json()
    row.status = state.status
    row.wait_id = state.wait.id if state.is_waiting and state.wait is not None else None
    row.updated_at = step.now
    if state.status in ("completed", "failed") and row.ended_at is None:
        row.ended_at = step.now
    step.db.add(row)


# ---- inbound -------------------------------------------------------------------------------


def handle_inbound(db: Session, inbound: Inbound, *, settings: Settings, registry: FlowRegistry,
                   now: datetime) -> Outcome:
    p = _lock_participant_by_phone(db, inbound.phone)
    if p is None or p.erased_at is not None:
        return _unknown_sender(db, inbound, settings, now)
    assert p.id is not None
    msg_id = _insert_ignore(db, Message.__table__, {  # type: ignore[attr-defined]
        "participant_id": p.id, "direction": "in", "channel": inbound.channel,
        "address": inbound.phone, "sender": inbound.to, "twilio_sid": inbound.sid,
        "body": inbound.body, "kind": "reply", "status": "received", "language": p.language,
        "attempts": 0, "created_at": now, "updated_at": now,
    }, ["twilio_sid"])
    if msg_id is None:
        return Outcome("duplicate", participant_code=p.code)
    p.last_inbound_at = now  # operational, not participant data: not audited
    db.add(p)
    if inbound.channel == "whatsapp" and p.whatsapp_window_closed:
        participants.update(db, p, actor=consent.actor(p), action="participant.whatsapp_window",
                            whatsapp_window_closed=False)
    outcome = Outcome("replied", participant_code=p.code, message_id=msg_id)
    delivery = _Delivery(channel=inbound.channel, sender=inbound.to, status="sent",
                         kind="reply", reply_to_id=msg_id)

    if inbound.opt_out_type:
        consent.apply_advanced_opt_out(db, p, inbound.opt_out_type, now=now, message_id=msg_id)
        outcome.result = "opt_out_recorded"
        return outcome

    if not consent.may_message(p):
        keyword = understand.detect_keyword(inbound.body, p.language)
        if keyword is None or keyword.kind != "start":
            outcome.result = "silenced"  # stored, never answered while opted out
            return outcome
        _keyword_reply(db, p, keyword.kind, keyword.language, settings, now, delivery, outcome)
        return outcome

    row = db.exec(
        select(ConversationSession)
        .where(ConversationSession.participant_id == p.id,
               ConversationSession.status == "waiting")
        .order_by(col(ConversationSession.updated_at).desc()).limit(1)).first()
    if row is None:
        keyword = understand.detect_keyword(inbound.body, p.language)
        if keyword is not None:
            _keyword_reply(db, p, keyword.kind, keyword.language, settings, now, delivery,
                           outcome)
            return outcome
        text = system_messages.text("no_open_question", p.language, settings.default_language)
        db.add(_outbound(p, text, kind="system", status="sent", now=now,
                         channel=delivery.channel, sender=delivery.sender, language=p.language,
                         reply_to_id=msg_id))
        outcome.replies.append(text)
        outcome.result = "no_open_question"
        return outcome

    flow = registry.version(db, row.flow_id, row.flow_version)
    before = es.Session.from_json(row.state_json)
    catalogs = catalogs_for(settings)
    after, events = runner.resume(flow, before, engine_participant(p),
                                  runner.Reply(inbound.body), now, catalogs)
    step = _Step(db, settings, p, row, before, after, events, now, delivery, catalogs)
    _apply(step)
    outcome.replies = step.texts
    return outcome


def _keyword_reply(db: Session, p: Participant, kind: str, language: str | None,
                   settings: Settings, now: datetime, delivery: _Delivery,
                   outcome: Outcome) -> None:
    result = consent.apply_keyword(db, p, kind, language, now=now,
                                   message_id=delivery.reply_to_id,
                                   contact=settings.study_contact,
                                   default_language=settings.default_language)
    outcome.result = f"keyword_{kind}"
    for _key, text in result.replies:
        db.add(_outbound(p, text, kind="system", status="sent", now=now,
                         channel=delivery.channel, sender=delivery.sender,
                         language=p.language, reply_to_id=delivery.reply_to_id))
        outcome.replies.append(text)


def _unknown_sender(db: Session, inbound: Inbound, settings: Settings, now: datetime) -> Outcome:
    """One generic reply per number per UTC day; only a keyed hash of the number is kept."""
    day = now.astimezone(UTC).date().isoformat()
    new = _insert_ignore(db, UnknownSenderReply.__table__, {  # type: ignore[attr-defined]
        "phone_hash": phone_hash(settings.secret_key, inbound.phone), "day": day,
        "created_at": now}, ["phone_hash", "day"])
    if new is None:
        return Outcome("unknown_sender_quiet")
    text = system_messages.text("unknown_sender", settings.default_language,
                                settings.default_language)
    return Outcome("unknown_sender", replies=[text])


# ---- starting a flow -------------------------------------------------------------------------


def start_flow(db: Session, participant: Participant, flow_id: str, now: datetime,
               params: Mapping[str, Any] | None = None, *, settings: Settings | None = None,
               registry: FlowRegistry | None = None) -> list[Message]:
    """Start `flow_id` for `participant`; its first messages go to the outbox ("pending").

    A waiting session the participant still has is interrupted: one conversation at a time.
    Returns the outbound rows (none when the participant has opted out).
    """
    settings = settings or Settings.from_env()
    registry = registry or default_registry()
    assert participant.id is not None
    p = _lock_participant(db, participant.id) or participant
    assert p.id is not None
    if not consent.may_message(p):
        logs.event(_log, "flow_not_started_opted_out", flow=flow_id, participant=p.code)
        return []
    flow = registry.current(db, flow_id)
    db.execute(
        sa.update(ConversationSession)
        .where(col(ConversationSession.participant_id) == p.id,
               col(ConversationSession.status).in_(("waiting", "active")))
        .values(status="interrupted", wait_id=None, ended_at=now, updated_at=now))
    catalogs = catalogs_for(settings)
    state, events = runner.start(flow, engine_participant(p), now, catalogs, params)
    row = ConversationSession(id=state.id, participant_id=p.id, flow_id=flow.id,
                              flow_version=flow.version, status=state.status,
                              state_json=state.to_json(), created_at=now, updated_at=now)
    db.add(row)
    before = es.Session(id=state.id, flow_id=flow.id, flow_version=flow.version,
                        participant_id=str(p.id), language=p.language, started_at=now)
    delivery = _Delivery(channel=p.channel, sender=_sender(settings, p.channel),
                         status="pending", kind="nudge")
    step = _Step(db, settings, p, row, before, state, events, now, delivery, catalogs)
    _apply(step)
    db.flush()
    logs.event(_log, "flow_started", flow=flow.id, version=flow.version, session=row.id,
               participant=p.code, messages=len(step.messages))
    return step.messages


# ---- delivery status -----------------------------------------------------------------------

#: How far along a message is. Callbacks arrive out of order, so a status only replaces a
#: lower-ranked one. The outcomes (delivered, undelivered, failed) share a rank: the first
#: one Twilio reports stands. `read` (WhatsApp) outranks all of them because it proves
#: the participant saw the message.
STATUS_RANK: dict[str, int] = {
    "cancelled": 0, "pending": 0,
    "queued": 1, "accepted": 1, "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "partially_delivered": 4,
    "read": 5,
}
ERROR_OPTED_OUT = 21610
ERROR_WHATSAPP_WINDOW = 63016
_TWILIO_ACTOR = "system:twilio"


@dataclass(slots=True)
class StatusOutcome:
    result: str  # updated | unchanged | duplicate | unknown_sid | inbound_sid | unknown_status
    participant_code: str | None = None


def handle_status(db: Session, update: StatusUpdate, *, now: datetime) -> StatusOutcome:
    new = _insert_ignore(db, StatusCallback.__table__, {  # type: ignore[attr-defined]
        "twilio_sid": update.sid, "status": update.status, "error_code": update.error_code,
        "received_at": now}, ["twilio_sid", "status"])
    if new is None:
        return StatusOutcome("duplicate")
    msg = db.exec(select(Message).where(Message.twilio_sid == update.sid)
                  .with_for_update()).first()
    if msg is None:
        return StatusOutcome("unknown_sid")
    if msg.direction != "out":
        return StatusOutcome("inbound_sid")
    outcome = StatusOutcome("unchanged")
    rank = STATUS_RANK.get(update.status)
    if rank is None:
        outcome.result = "unknown_status"
    elif rank > STATUS_RANK.get(msg.status, 0):
        msg.status = update.status
        if update.error_code is not None:
            msg.error_code = update.error_code
        if rank >= STATUS_RANK["sent"] and msg.sent_at is None:
            msg.sent_at = now
        msg.updated_at = now
        db.add(msg)
        outcome.result = "updated"
    if update.error_code in (ERROR_OPTED_OUT, ERROR_WHATSAPP_WINDOW) and msg.participant_id:
        # Act on these whatever the order: they describe the participant, not the message.
        p = _lock_participant(db, msg.participant_id)
        if p is not None:
            outcome.participant_code = p.code
            if update.error_code == ERROR_OPTED_OUT:
                consent.opt_out(db, p, source="error_21610", actor_name=_TWILIO_ACTOR, now=now,
                                message_id=msg.id)
            else:
                participants.update(db, p, actor=_TWILIO_ACTOR,
                                    action="participant.whatsapp_window",
                                    whatsapp_window_closed=True)
    return outcome
