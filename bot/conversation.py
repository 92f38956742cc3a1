"""The imperative shell around the pure engine: load, step, persist. One transaction per call.

`handle_inbound` is the webhook's whole job once the request is known to be Twilio's:
lock the participant, store the message once, run the engine (or enforce a keyword), turn
the events into rows and return the texts for the TwiML reply. `start_flow` starts a flow
(workers and tests use it) and leaves its messages in the outbox. The caller commits.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select

from . import audit, consent, escalation, logs, nudges, outbox, participants, system_messages
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
    WaitStarted,
)
from .engine.languages import SUPPORTED, primary
from .engine.localizer import Localizer
from .engine.segments import segments
from .flow_registry import FlowRegistry
from .flow_registry import default as default_registry
from .store.db import DriverInsert, DriverSQL, pipelined
from .store.models import Escalation, Message, Participant
from .twilio_io import Inbound, StatusUpdate

_log = logs.get_logger("conversation")

#: Participant columns a flow's `set:` may write; every other name goes to the extra fields.
#: `consent` takes "opted_in" or "opted_out" and is recorded like a keyword (source "flow").
_COLUMN_FIELDS = ("language", "checkin_time", "timezone", "consent")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(slots=True)
class Outcome:
    """What happened to one inbound message, for the reply and the log line."""

    result: str  # replied | duplicate | unknown_sender | silenced | opt_out_recorded | ...
    replies: list[str] = field(default_factory=list)
    participant_code: str | None = None
    message_id: int | None = None


# ---- tables and statements ---------------------------------------------------------------------
#
# The hot path (one inbound message) runs its statements on the session's own connection,
# straight on the driver's cursor (DriverSQL, DriverInsert in bot/store/db.py): ORM objects
# cost several times the SQL itself, and Core about three times. The ORM is used where other
# modules need it (audit of participant updates, consent).

_S = SQLModel.metadata.tables["conversation_session"]
_N = SQLModel.metadata.tables["nudge"]

#: Take the participant's row lock and note the inbound time in one statement: an UPDATE
#: locks the row like SELECT ... FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE
#: already serialises writers). Erased participants have no phone, so they never match.
_SEEN = DriverSQL(
    "UPDATE participant SET last_inbound_at = ? WHERE phone = ? AND erased_at IS NULL "
    "RETURNING id, code, phone, language, timezone, consent, fields_json, "
    "whatsapp_window_closed, whatsapp_withheld")
_MESSAGE_OWNER = DriverSQL("SELECT participant_id FROM message WHERE twilio_sid = ?")
_WAITING = DriverSQL(
    "SELECT id, flow_id, flow_version, state_json FROM conversation_session "
    "WHERE participant_id = ? AND status = 'waiting' ORDER BY updated_at DESC LIMIT 1")
_SAVE_SESSION = DriverSQL(
    "UPDATE conversation_session SET state_json = ?, status = ?, wait_id = ?, updated_at = ?, "
    "ended_at = COALESCE(ended_at, ?) WHERE id = ?")
_NEW_SESSION = sa.insert(_S)
_NEW_ANSWER = DriverInsert("answer", returning="id")
_NEW_MESSAGES = DriverInsert("message")


@functools.cache
def _insert_ignore_stmt(table: str, conflict: tuple[str, ...]) -> DriverInsert:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id (both databases spell it alike)."""
    return DriverInsert(table, conflict=conflict, returning="id")


def _insert_ignore(db: Session, table: str, values: Mapping[str, Any],
                   conflict: tuple[str, ...]) -> int | None:
    """The new row's id, or None when the unique constraint says it exists already.

    The constraint decides, so concurrent duplicates cannot both get through, and nothing
    is raised that would abort a PostgreSQL transaction.
    """
    row = _insert_ignore_stmt(table, conflict).first(db.connection(), values)
    return None if row is None else int(row[0])


# ---- small helpers ------------------------------------------------------------------------


def catalogs_for(settings: Settings) -> Callable[[str], Localizer]:
    default = settings.default_language

    def catalogs(language: str) -> Localizer:
        return system_messages.catalogs_with_fallback(language, default)

    return catalogs


def phone_hash(secret_key: str, phone: str) -> str:
    return hmac.new(secret_key.encode(), phone.encode(), hashlib.sha256).hexdigest()


def _lock_participant(db: Session, participant_id: int) -> Participant | None:
    stmt = select(Participant).where(Participant.id == participant_id).with_for_update()
    return db.exec(stmt.execution_options(populate_existing=True)).first()


def _sender(settings: Settings, channel: str) -> str | None:
    if channel == "whatsapp" and settings.whatsapp_from:
        return f"whatsapp:{settings.whatsapp_from}"
    return settings.sms_from


@dataclass(slots=True)
class _Who:
    """The participant as the hot path reads them; the ORM object only to change them."""

    id: int
    code: str
    phone: str | None
    language: str
    timezone: str
    consent: str
    fields_json: str
    whatsapp_window_closed: bool
    whatsapp_withheld: bool
    orm: Participant | None = None

    @classmethod
    def of(cls, p: Participant) -> _Who:
        assert p.id is not None
        return cls(p.id, p.code, p.phone, p.language, p.timezone, p.consent, p.fields_json,
                   p.whatsapp_window_closed, p.whatsapp_withheld, orm=p)

    def load(self, db: Session) -> Participant:
        """The ORM row (already locked by this transaction), for audited changes."""
        if self.orm is None:
            self.orm = db.get(Participant, self.id)
            assert self.orm is not None
        return self.orm

    def sync(self) -> None:
        """Pick up what an audited change did to the ORM row."""
        if self.orm is not None:
            self.language, self.consent = self.orm.language, self.orm.consent

    @property
    def may_message(self) -> bool:
        return self.consent != consent.OPTED_OUT

    def engine(self) -> es.Participant:
        """What the engine may see: an internal id, language, zone, extra fields; no phone."""
        data = json.loads(self.fields_json or "{}")
        return es.Participant(id=str(self.id), language=self.language, timezone=self.timezone,
                              fields=data if isinstance(data, dict) else {})


def engine_participant(p: Participant) -> es.Participant:
    return _Who.of(p).engine()


# ---- applying engine events -----------------------------------------------------------------


@dataclass(slots=True)
class _Delivery:
    """Where the engine's messages go: back in the TwiML reply, or into the outbox."""

    channel: str
    sender: str | None
    outbox: bool  # False: returned as TwiML ("sent"); True: left "pending" for the workers
    kind: str  # "reply" | "nudge"
    reply_to_id: int | None = None


@dataclass(slots=True)
class _SessionRef:
    id: str
    flow_id: str
    flow_version: int
    new: bool = False


@dataclass(slots=True)
class _Step:
    db: Session
    settings: Settings
    who: _Who
    ref: _SessionRef
    before: es.Session
    after: es.Session
    events: list[Event]
    now: datetime
    delivery: _Delivery
    catalogs: Callable[[str], Localizer]
    texts: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[Message] = field(default_factory=list)


#: Events whose handling goes through the ORM (consent, escalation, participant fields),
#: which reads results as it goes and so cannot run inside a pipeline.
_ORM_EVENTS = (KeywordSeen, FieldSet, EscalationRaised)


def _apply(step: _Step, *, pipeline: bool = False) -> None:
    """Turn the engine's events into rows: in event order, audit entries last.

    With `pipeline`, a run whose events need no ORM work (an answer and the next question:
    most inbound messages) sends its writes to PostgreSQL without waiting for each one."""
    plain = pipeline and not any(isinstance(e, _ORM_EVENTS) for e in step.events)
    with pipelined(step.db.connection()) if plain else contextlib.nullcontext():
        answers = _write(step)
    # Last: the participant's audit stream is locked from here to the commit.
    for answer_id, answer in answers:
        _audit_answer(step, answer_id, answer)


def _write(step: _Step) -> list[tuple[int, AnswerRecorded]]:
    """Everything `_apply` writes but the audit entries; the answers stored, with their ids."""
    db, who, now, ref = step.db, step.who, step.now, step.ref
    actor = f"participant:{who.code}"
    loc = step.catalogs(step.before.language)
    field_changes: dict[str, Any] = {}
    extra_fields: dict[str, Any] = {}
    stopped = False
    answers: list[AnswerRecorded] = []
    _save_session(step)
    for event in step.events:
        if isinstance(event, KeywordSeen):
            result = consent.apply_keyword(
                db, who.load(db), event.keyword, event.language, now=now,
                message_id=step.delivery.reply_to_id, contact=step.settings.study_contact,
                default_language=step.settings.default_language,
                # The engine re-asks the open question in the new language itself.
                announce_language=False)
            who.sync()
            stopped = stopped or event.keyword == "stop"
            for key, text in result.replies:
                _say(step, text, kind="system", language=who.language, step_id=None,
                     force=key == "stop_confirmed")
        elif isinstance(event, MessageCreated):
            if not stopped:
                _say(step, event.text, kind="safety" if event.urgent else step.delivery.kind,
                     language=event.language, step_id=event.step)
        elif isinstance(event, AnswerRecorded):
            answers.append(event)
        elif isinstance(event, FieldSet):
            _field(event, field_changes, extra_fields)
        elif isinstance(event, EscalationRaised):
            _escalate(step, event)
        elif isinstance(event, FlowFailed):
            logs.event(_log, "flow_failed", level=40, flow=ref.flow_id,
                       version=ref.flow_version, step=event.step, reason=event.reason,
                       participant=who.code)
    _schedule_nudges(step)
    if extra_fields:
        field_changes["fields"] = extra_fields
    wanted_consent = field_changes.pop("consent", None)
    if field_changes:
        participants.update(db, who.load(db), actor=actor, action="participant.flow_set",
                            secret_key=step.settings.secret_key, **field_changes)
        who.sync()
    if wanted_consent is not None:
        # After this run's messages were written, so a flow can say goodbye and then opt
        # the participant out (onboarding's "no"); from here on nothing else goes out.
        _flow_consent(db, who, wanted_consent, now, step.delivery.reply_to_id)
    if step.rows:
        _NEW_MESSAGES.many(db.connection(), step.rows)
    return [(_insert_answer(step, answer, loc), answer) for answer in answers]


def _schedule_nudges(step: _Step) -> None:
    """WaitStarted -> re-prompt and give-up nudges, FollowUpScheduled -> a follow-up nudge
    (bot/nudges.py). Nudges of a wait the run left are marked stale, so no worker job is
    spent finding out that the question was answered. Before any opt-out of this run, which
    cancels them with everything else."""
    if not step.who.may_message:
        return
    left = step.before.wait.id if step.before.wait is not None else None
    if left is not None and step.after.wait is not None and step.after.wait.id == left:
        left = None
    if left is None and not any(isinstance(e, (WaitStarted, FollowUpScheduled))
                                for e in step.events):
        return
    nudges.schedule_session(step.db, step.who.id, step.ref.id, step.ref.flow_id, step.events,
                            step.now, left_wait=left)


def _insert_answer(step: _Step, event: AnswerRecorded, loc: Localizer) -> int:
    ref = step.ref
    return int(_NEW_ANSWER.first(step.db.connection(), {
        "participant_id": step.who.id, "session_id": ref.id, "flow_id": ref.flow_id,
        "flow_version": ref.flow_version, "translation_revision": loc.revision,
        "language": loc.language, "step": event.step, "key": event.key,
        "answer_type": event.answer_type,
        "value_json": json.dumps(event.value, ensure_ascii=False, default=str),
        "message_id": step.delivery.reply_to_id, "recorded_at": step.now,
    })[0])


def _audit_answer(step: _Step, answer_id: int, event: AnswerRecorded) -> None:
    # The trail outlives erasure: it gets the answer's digest, never its value (free text
    # may name people), and `bot audit verify` checks the stored answer against it.
    ref = step.ref
    audit.record(step.db, actor=f"participant:{step.who.code}", action="answer.recorded",
                 entity="answer",
                 entity_id=answer_id, at=step.now, stream=audit.participant_stream(step.who.id),
                 new={"flow_id": ref.flow_id, "flow_version": ref.flow_version,
                      "session_id": ref.id, "step": event.step, "key": event.key,
                      "answer_type": event.answer_type,
                      "value_hmac": audit.value_hmac(step.settings.secret_key,
                                                     audit.answer_about(answer_id),
                                                     event.value)})


def _message_row(who: _Who, text: str, *, kind: str, status: str, now: datetime, channel: str,
                 sender: str | None, language: str, session_id: str | None, step: str | None,
                 reply_to_id: int | None) -> dict[str, Any]:
    return {
        "participant_id": who.id, "direction": "out", "channel": channel,
        "address": who.phone, "sender": sender, "twilio_sid": None, "body": text,
        "kind": kind, "status": status, "error_code": None, "session_id": session_id,
        "step": step, "language": language, "segments": segments(text), "attempts": 0,
        "due_at": now, "sent_at": now if status == "sent" else None,
        "reply_to_id": reply_to_id, "created_at": now, "updated_at": now,
    }


def _say(step: _Step, text: str, *, kind: str, language: str, step_id: str | None,
         force: bool = False) -> None:
    if not force and not step.who.may_message:
        return
    d = step.delivery
    row = _message_row(step.who, text, kind=kind, status="pending" if d.outbox else "sent",
                       now=step.now, channel=d.channel, sender=d.sender, language=language,
                       session_id=step.ref.id, step=step_id, reply_to_id=d.reply_to_id)
    step.texts.append(text)
    if d.outbox:
        # Workers get ids to send, so the outbox rows are made through the ORM.
        msg = Message(**row)
        step.db.add(msg)
        step.outbox.append(msg)
    else:
        step.rows.append(row)


def _valid_language(value: object) -> bool:
    return isinstance(value, str) and primary(value) in SUPPORTED


def _valid_hhmm(value: object) -> bool:
    return isinstance(value, str) and bool(_HHMM.match(value))


def _valid_consent(value: object) -> bool:
    return value in (consent.OPTED_IN, consent.OPTED_OUT)


def _valid_timezone(name: object) -> bool:
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return False
    return True


_VALID: dict[str, Callable[[object], bool]] = {
    "language": _valid_language, "checkin_time": _valid_hhmm, "timezone": _valid_timezone,
    "consent": _valid_consent,
}


def _flow_consent(db: Session, who: _Who, state: str, now: datetime,
                  message_id: int | None) -> None:
    p = who.load(db)
    if state == consent.OPTED_OUT:
        consent.opt_out(db, p, source="flow", actor_name=f"participant:{who.code}", now=now,
                        message_id=message_id)
    else:
        consent.opt_in(db, p, source="flow", actor_name=f"participant:{who.code}",
                       message_id=message_id)
    who.sync()


def _field(event: FieldSet, columns: dict[str, Any], extra: dict[str, Any]) -> None:
    name, value = event.field, event.value
    if name not in _COLUMN_FIELDS:
        extra[name] = value
        return
    if _VALID[name](value):
        columns[name] = primary(value) if name == "language" else value
    else:
        logs.event(_log, "field_value_refused", level=30, field=name)


def _escalate(step: _Step, event: EscalationRaised) -> Escalation:
    """One open escalation per participant and reason, paged and audited (bot/escalation.py)."""
    return escalation.raise_escalation(
        step.db, step.who.load(step.db), severity=event.severity, reason=event.reason,
        source="flow", settings=step.settings, now=step.now, session_id=step.ref.id,
        flow_id=event.flow, step=event.step, message_id=step.delivery.reply_to_id)


def _save_session(step: _Step) -> None:
    state, now = step.after, step.now
    wait_id = state.wait.id if state.is_waiting and state.wait is not None else None
    ended = now if state.status in ("completed", "failed") else None
    conn = step.db.connection()
    if step.ref.new:
        conn.execute(_NEW_SESSION, {
            "id": state.id, "participant_id": step.who.id, "flow_id": step.ref.flow_id,
            "flow_version": step.ref.flow_version, "status": state.status,
            "wait_id": wait_id, "state_json": state.to_json(), "created_at": now,
            "updated_at": now, "ended_at": ended})
        step.ref.new = False
        return
    _SAVE_SESSION.run(conn, (state.to_json(), state.status, wait_id, now, ended, step.ref.id))


# ---- inbound -------------------------------------------------------------------------------


def handle_inbound(db: Session, inbound: Inbound, *, settings: Settings, registry: FlowRegistry,
                   now: datetime) -> Outcome:
    """Store and answer one inbound message. The caller commits, or rolls back a duplicate."""
    conn = db.connection()
    found = _SEEN.first(conn, (now, inbound.phone))
    if found is None:
        # Nurse navigators text `ACK <code>` from their registered phones.
        nav = escalation.navigator_reply(db, inbound, settings=settings, now=now)
        if nav is not None:
            return Outcome(nav.result, replies=nav.replies)
        return _unknown_sender(db, inbound, settings, now)
    who = _Who(*found)
    who.whatsapp_window_closed = bool(who.whatsapp_window_closed)  # SQLite's driver: 0 or 1
    who.whatsapp_withheld = bool(who.whatsapp_withheld)
    msg_id = _insert_ignore(db, "message", {
        "participant_id": who.id, "direction": "in", "channel": inbound.channel,
        "address": inbound.phone, "sender": inbound.to, "twilio_sid": inbound.sid,
        "body": inbound.body, "kind": "reply", "status": "received", "language": who.language,
        "attempts": 0, "created_at": now, "updated_at": now,
    }, ("twilio_sid",))
    if msg_id is None:
        # The caller rolls back: a retry changes nothing, not even last_inbound_at.
        return Outcome("duplicate", participant_code=who.code)
    if inbound.channel == "whatsapp" and who.whatsapp_window_closed:
        participants.update(db, who.load(db), actor=f"participant:{who.code}",
                            action="participant.whatsapp_window", whatsapp_window_closed=False)
    outcome = Outcome("replied", participant_code=who.code, message_id=msg_id)
    delivery = _Delivery(channel=inbound.channel, sender=inbound.to, outbox=False,
                         kind="reply", reply_to_id=msg_id)
    # Red flags ("no puedo respirar") escalate in any state, opted out or not.
    flagged = escalation.screen_inbound(db, who.id, inbound.body, who.language,
                                        settings=settings, now=now, message_id=msg_id)

    if inbound.opt_out_type:
        consent.apply_advanced_opt_out(db, who.load(db), inbound.opt_out_type, now=now,
                                       message_id=msg_id)
        outcome.result = "opt_out_recorded"
        return outcome

    if not who.may_message:
        keyword = understand.detect_keyword(inbound.body, who.language)
        if keyword is None or keyword.kind != "start":
            outcome.result = "silenced"  # stored, never answered while opted out
            return outcome
        _keyword_reply(db, who, keyword.kind, keyword.language, settings, now, delivery,
                       outcome)
        return outcome

    row = _WAITING.first(conn, (who.id,))
    if inbound.channel == "whatsapp" and who.whatsapp_withheld and _withheld_reply(
            db, who, inbound.body, flagged, row, now, delivery, outcome, registry):
        return outcome
    if row is None:
        keyword = understand.detect_keyword(inbound.body, who.language)
        if keyword is not None:
            _keyword_reply(db, who, keyword.kind, keyword.language, settings, now, delivery,
                           outcome)
            return outcome
        if any(e.severity == "urgent" for e in flagged):
            # The safety message answers this one; "no question waiting" would not.
            outcome.result = "red_flag"
            return outcome
        text = system_messages.text("no_open_question", who.language, settings.default_language)
        _system_reply(db, who, text, now, delivery)
        outcome.replies.append(text)
        outcome.result = "no_open_question"
        return outcome

    session_id, flow_id, flow_version, state_json = row
    catalogs = catalogs_for(settings)
    try:
        flow = registry.version(db, flow_id, flow_version)
        before = es.Session.from_json(state_json)
        after, events = runner.resume(flow, before, who.engine(), runner.Reply(inbound.body),
                                      now, catalogs)
    except sa.exc.SQLAlchemyError:
        raise  # most likely transient: fail the request, and Twilio's retry tries again
    except Exception as exc:  # noqa: BLE001 - a flow or session that cannot run
        # Retrying would fail the same way. Keep the message, take the session out of the
        # way so the participant is not stuck on it, and tell the team through the log.
        db.connection().execute(
            sa.update(_S).where(_S.c.id == session_id)
            .values(status="failed", wait_id=None, ended_at=now, updated_at=now))
        logs.event(_log, "session_failed", level=40, session=session_id, flow=flow_id,
                   version=flow_version, error=type(exc).__name__, participant=who.code)
        outcome.result = "session_failed"
        return outcome
    step = _Step(db, settings, who, _SessionRef(session_id, flow_id, flow_version), before,
                 after, events, now, delivery, catalogs)
    _apply(step, pipeline=True)
    outcome.replies.extend(step.texts)  # after any withheld texts
    return outcome


def _withheld_reply(db: Session, who: _Who, body: str, flagged: list[Escalation],
                    waiting: Sequence[Any] | None, now: datetime, d: _Delivery,
                    outcome: Outcome, registry: FlowRegistry) -> bool:
    """Texts of theirs went out as templates that do not show them: this message, which
    opens the window, gets them first in its reply. True when that is the whole answer: the
    participant was answering the template, not the open question (`waiting`, the waiting
    session's row) they have not seen. False: handle the message as usual (after the texts,
    if any).
    """
    if understand.detect_keyword(body, who.language) is not None:
        return False  # STOP, START, HELP, a language: as usual; the texts wait
    if any(e.severity == "urgent" for e in flagged):
        outcome.result = "red_flag"  # the safety message answers this one; the texts wait
        return True
    texts = outbox.release_withheld(db, who.id, now=now, reply_to_id=d.reply_to_id)
    if not texts:
        return False
    _NEW_MESSAGES.many(db.connection(), [_message_row(
        who, t.body, kind="reply", status="sent", now=now, channel=d.channel, sender=d.sender,
        language=t.language or who.language, session_id=t.session_id, step=t.step,
        reply_to_id=d.reply_to_id) for t in texts])
    outcome.replies.extend(t.body for t in texts)
    if waiting is not None:
        steps = {t.step for t in texts if t.session_id == waiting[0]}
        if not steps:
            return False  # the open question went out in full: this may well be its answer
        _restart_wait(db, who, waiting, steps, now, registry)
    outcome.result = "withheld_delivered"
    return True


def _restart_wait(db: Session, who: _Who, waiting: Sequence[Any], steps: set[str | None],
                  now: datetime, registry: FlowRegistry) -> None:
    """The open question reaches the participant only now: its re-prompt and give-up count
    from here, not from when it was written, and the nudges planned for the old times go."""
    session_id, flow_id, flow_version, state_json = waiting
    try:
        flow = registry.version(db, flow_id, flow_version)
        before = es.Session.from_json(state_json)
        wait = before.wait
        if wait is None or wait.step not in steps:
            return  # only other texts of this conversation were withheld, not its question
        after, events = runner.restart_wait(flow, before, wait.id, now)
    except sa.exc.SQLAlchemyError:
        raise
    except Exception as exc:  # noqa: BLE001 - a flow or session that cannot run
        # The texts are delivered all the same; the question keeps its old times, and the
        # participant's answer is handled (or the session failed) as usual.
        logs.event(_log, "wait_restart_failed", level=40, session=session_id, flow=flow_id,
                   version=flow_version, error=type(exc).__name__, participant=who.code)
        return
    if not events:
        return
    conn = db.connection()
    _SAVE_SESSION.run(conn, (after.to_json(), after.status, wait.id, now, None, session_id))
    # Stale: the wait's pending nudges but those at the new times (same key: same row).
    keep = [nudges.wait_key(wait.id, due) for e in events if isinstance(e, WaitStarted)
            for due in (e.reprompt_at, e.give_up_at) if due is not None]
    conn.execute(sa.update(_N).where(
        _N.c.participant_id == who.id, _N.c.wait_id == wait.id,
        _N.c.status == nudges.PENDING, _N.c.dedupe_key.not_in(keep))
        .values(status=nudges.STALE, done_at=now))
    nudges.schedule_session(db, who.id, session_id, flow_id, events, now)
    logs.event(_log, "wait_restarted", session=session_id, step=wait.step,
               participant=who.code)


def _system_reply(db: Session, who: _Who, text: str, now: datetime, d: _Delivery) -> None:
    _NEW_MESSAGES.many(db.connection(), [_message_row(
        who, text, kind="system", status="sent", now=now, channel=d.channel, sender=d.sender,
        language=who.language, session_id=None, step=None, reply_to_id=d.reply_to_id)])


def _keyword_reply(db: Session, who: _Who, kind: str, language: str | None,
                   settings: Settings, now: datetime, delivery: _Delivery,
                   outcome: Outcome) -> None:
    result = consent.apply_keyword(db, who.load(db), kind, language, now=now,
                                   message_id=delivery.reply_to_id,
                                   contact=settings.study_contact,
                                   default_language=settings.default_language)
    who.sync()
    outcome.result = f"keyword_{kind}"
    for _key, text in result.replies:
        _system_reply(db, who, text, now, delivery)
        outcome.replies.append(text)


def _unknown_sender(db: Session, inbound: Inbound, settings: Settings, now: datetime) -> Outcome:
    """One generic reply per number per UTC day; only a keyed hash of the number is kept."""
    day = now.astimezone(UTC).date().isoformat()
    new = _insert_ignore(db, "unknown_sender_reply", {
        "phone_hash": phone_hash(settings.secret_key, inbound.phone), "day": day,
        "created_at": now}, ("phone_hash", "day"))
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
    if not consent.may_message(p):
        logs.event(_log, "flow_not_started_opted_out", flow=flow_id, participant=p.code)
        return []
    flow = registry.current(db, flow_id)
    db.connection().execute(
        sa.update(_S)
        .where(_S.c.participant_id == p.id, _S.c.status.in_(("waiting", "active")))
        .values(status="interrupted", wait_id=None, ended_at=now, updated_at=now))
    catalogs = catalogs_for(settings)
    who = _Who.of(p)
    state, events = runner.start(flow, who.engine(), now, catalogs, params)
    before = es.Session(id=state.id, flow_id=flow.id, flow_version=flow.version,
                        participant_id=str(p.id), language=p.language, started_at=now)
    delivery = _Delivery(channel=p.channel, sender=_sender(settings, p.channel), outbox=True,
                         kind="nudge")
    step = _Step(db, settings, who, _SessionRef(state.id, flow.id, flow.version, new=True),
                 before, state, events, now, delivery, catalogs)
    _apply(step)
    db.flush()
    logs.event(_log, "flow_started", flow=flow.id, version=flow.version, session=state.id,
               participant=p.code, messages=len(step.outbox))
    return step.outbox


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
    new = _insert_ignore(db, "status_callback", {
        "twilio_sid": update.sid, "status": update.status, "error_code": update.error_code,
        "received_at": now}, ("twilio_sid", "status"))
    if new is None:
        return StatusOutcome("duplicate")
    if update.error_code is not None or update.status in ("failed", "undelivered"):
        # This callback may change the participant (opt-out, window, withheld texts): lock
        # their row before the message's, the order the webhook takes them in, so a
        # callback and the participant's own message never wait for each other in a circle.
        owner = _MESSAGE_OWNER.first(db.connection(), (update.sid,))
        if owner is not None and owner[0] is not None:
            _lock_participant(db, int(owner[0]))
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
    if outcome.result == "updated" and update.status in ("failed", "undelivered"):
        # Retries, WhatsApp fallbacks and final failures are the outbox's business.
        from . import outbox

        outbox.on_delivery_failure(db, msg, update.error_code, now=now)
    return outcome
