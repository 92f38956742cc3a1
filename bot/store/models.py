"""Database tables. The SQL database is the source of truth; Redis only carries work.

Times are aware UTC (`UTCDateTime`); participant-local times are computed from the
participant's IANA zone. Phone numbers are E.164 and appear only in `participant.phone`
and the per-message `address` columns, so erasure has few places to clear.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .types import UTCDateTime, utcnow

# Named constraints keep later migrations portable: SQLite batch mode can only drop a
# constraint it can name, and both databases then use the same names.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _created() -> Any:
    return Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


class Participant(SQLModel, table=True):
    __tablename__ = "participant"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True, index=True)  # the study's participant code
    phone: str | None = Field(default=None, max_length=20, unique=True, index=True)  # E.164
    channel: str = Field(default="sms", max_length=10)  # sms | whatsapp
    sms_consent: bool = Field(default=True)  # may we fall back to SMS from WhatsApp
    language: str = Field(default="en", max_length=12)
    timezone: str = Field(default="UTC", max_length=64)
    consent: str = Field(default="opted_in", max_length=12)  # pending | opted_in | opted_out
    checkin_time: str | None = Field(default=None, max_length=5)  # local "HH:MM"
    fields_json: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False))
    last_inbound_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    whatsapp_window_closed: bool = Field(default=False)
    #: A text of theirs went out as a template that does not show it (Message.withheld_at):
    #: their next WhatsApp message gets it. Read by the webhook with the row it locks anyway.
    whatsapp_withheld: bool = Field(default=False)
    pseudonym: str | None = Field(default=None, max_length=40, index=True)
    erased_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    created_at: datetime = _created()
    updated_at: datetime = _created()


class ConsentChange(SQLModel, table=True):
    """History of consent: every opt-in and opt-out, with where it came from."""

    __tablename__ = "consent_change"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    state: str = Field(max_length=12)
    source: str = Field(max_length=32)  # keyword | twilio_opt_out | error_21610 | staff | import
    message_id: int | None = Field(default=None, foreign_key="message.id")
    at: datetime = _created()


class Visit(SQLModel, table=True):
    __tablename__ = "visit"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    name: str = Field(max_length=80)
    scheduled_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    status: str = Field(default="scheduled", max_length=24)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class FlowVersion(SQLModel, table=True):
    """Every flow version a session ever ran on, so sessions finish on their own version."""

    __tablename__ = "flow_version"
    __table_args__ = (sa.UniqueConstraint("flow_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_id: str = Field(max_length=64)
    version: int
    source: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    sha256: str = Field(max_length=64)
    created_at: datetime = _created()


class ConversationSession(SQLModel, table=True):
    __tablename__ = "conversation_session"

    id: str = Field(primary_key=True, max_length=32)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    flow_id: str = Field(max_length=64)
    flow_version: int
    status: str = Field(max_length=12, index=True)
    wait_id: str | None = Field(default=None, max_length=48)
    state_json: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    created_at: datetime = _created()
    updated_at: datetime = _created()
    ended_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))


class Message(SQLModel, table=True):
    """Every message in and out. Outbound rows double as the outbox."""

    __tablename__ = "message"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    direction: str = Field(max_length=3)  # in | out
    channel: str = Field(default="sms", max_length=10)
    address: str | None = Field(default=None, max_length=40)  # the participant's number
    sender: str | None = Field(default=None, max_length=40)  # our number
    twilio_sid: str | None = Field(default=None, max_length=64, unique=True)
    body: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    kind: str = Field(default="reply", max_length=16)  # reply | nudge | safety | system | alert
    status: str = Field(default="received", max_length=16, index=True)
    error_code: int | None = None
    session_id: str | None = Field(default=None, max_length=32)
    step: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=12)
    segments: int | None = None
    attempts: int = 0
    due_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), index=True))
    sent_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    # Outbox delivery: a worker claims a row before sending; a claim older than the lease
    # means the worker died, and the sweep may send again (then `possible_duplicate`).
    claimed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    possible_duplicate: bool = Field(default=False)
    urgent: bool = Field(default=False)  # safety messages: exempt from quiet hours
    purpose: str | None = Field(default=None, max_length=32)  # WhatsApp template purpose
    content_sid: str | None = Field(default=None, max_length=64)
    content_variables: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # WhatsApp outside the window, as a template without `{body}`: the participant saw only
    # the template, and the text waits for their next message. `withheld_outcome` says what
    # became of it: delivered (in the reply to that message) | expired (stale by then).
    withheld_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    withheld_outcome: str | None = Field(default=None, max_length=12)
    last_error: str | None = Field(default=None, max_length=200)
    reply_to_id: int | None = Field(default=None, foreign_key="message.id")
    created_at: datetime = _created()
    updated_at: datetime = _created()


class StatusCallback(SQLModel, table=True):
    """One row per (MessageSid, MessageStatus): duplicates of a callback are harmless."""

    __tablename__ = "status_callback"
    __table_args__ = (sa.UniqueConstraint("twilio_sid", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    twilio_sid: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16)
    error_code: int | None = None
    received_at: datetime = _created()


class Answer(SQLModel, table=True):
    __tablename__ = "answer"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    session_id: str = Field(max_length=32, index=True)
    flow_id: str = Field(max_length=64)
    flow_version: int
    translation_revision: str = Field(max_length=32)
    language: str = Field(max_length=12)
    step: str = Field(max_length=64)
    key: str = Field(max_length=64)
    answer_type: str = Field(max_length=16)
    value_json: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    message_id: int | None = Field(default=None, foreign_key="message.id")
    recorded_at: datetime = _created()


class Escalation(SQLModel, table=True):
    __tablename__ = "escalation"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=12, unique=True)  # what navigators type in `ACK <code>`
    participant_id: int = Field(foreign_key="participant.id", index=True)
    session_id: str | None = Field(default=None, max_length=32)
    flow_id: str | None = Field(default=None, max_length=64)
    step: str | None = Field(default=None, max_length=64)
    severity: str = Field(max_length=10)
    reason: str = Field(max_length=64)
    state: str = Field(default="open", max_length=14, index=True)  # open|acknowledged|resolved
    repeats: int = 0
    level: int = 0  # how far up the on-call chain the alert has climbed
    next_alert_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    acknowledged_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    acknowledged_by: str | None = Field(default=None, max_length=64)
    resolved_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    resolution_note: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    created_at: datetime = _created()
    updated_at: datetime = _created()


class UnknownSenderReply(SQLModel, table=True):
    """At most one generic reply per unknown number per day; the number is kept hashed."""

    __tablename__ = "unknown_sender_reply"
    __table_args__ = (sa.UniqueConstraint("phone_hash", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    phone_hash: str = Field(max_length=64)
    day: str = Field(max_length=10)
    created_at: datetime = _created()


class AuditEntry(SQLModel, table=True):
    """Append-only, hash-chained record of every change to participant data and staff action.

    Entries form one chain per `stream` (bot/audit.py): `participant:<id>` for what concerns
    one participant, `system` for the rest, so participants' writes do not wait for each other.
    """

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    stream: str = Field(default="system", max_length=64)
    at: datetime = _created()
    actor: str = Field(max_length=64)  # participant:<code> | staff:<name> | system:<part>
    action: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    old_json: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    new_json: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditHead(SQLModel, table=True):
    """One row per stream: its newest entry's hash and its number of entries, written with
    every entry.

    A chain alone can't show that its newest entries were deleted (what remains is still a
    valid chain); comparing it with its head can.
    """

    __tablename__ = "audit_head"

    stream: str = Field(primary_key=True, max_length=64)
    hash: str = Field(max_length=64)
    entries: int = 0
    updated_at: datetime = _created()


class Nudge(SQLModel, table=True):
    """Work due at a time: start a flow, or nudge a waiting question (re-prompt / give up).

    The database is the truth; RQ only carries ids. `dedupe_key` makes planning idempotent
    (e.g. "checkin:42:2026-11-24", "visit:7:-1d@18:00", "wait:<wait id>:<due>").
    """

    __tablename__ = "nudge"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: str = Field(max_length=16)  # checkin | visit_reminder | timeout | follow_up
    flow_id: str | None = Field(default=None, max_length=64)
    session_id: str | None = Field(default=None, max_length=32)
    wait_id: str | None = Field(default=None, max_length=48)
    visit_id: int | None = Field(default=None, foreign_key="visit.id")
    params_json: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False))
    due_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    status: str = Field(default="pending", max_length=12, index=True)  # pending|done|cancelled
    dedupe_key: str = Field(max_length=160, unique=True)
    claimed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    done_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    created_at: datetime = _created()


class Navigator(SQLModel, table=True):
    """A nurse navigator (or the study coordinator) who is paged about escalations.

    Staff, not participants: the phone is kept so that an inbound `ACK <code>` can be matched
    to the person who sent it. `channels` lists where alerts go ("sms,email").
    """

    __tablename__ = "navigator"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    phone: str | None = Field(default=None, max_length=20, unique=True, index=True)  # E.164
    email: str | None = Field(default=None, max_length=254)
    language: str = Field(default="en", max_length=12)
    channels: str = Field(default="sms", max_length=40)
    coordinator: bool = Field(default=False)  # the last level of the on-call chain
    active: bool = Field(default=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class OnCallWindow(SQLModel, table=True):
    """A weekly window in which a navigator is on call, as primary or backup.

    Times are local to `timezone`; an `end` at or before `start` runs past midnight into the
    next day, and "24:00" means the end of the day.
    """

    __tablename__ = "oncall_window"

    id: int | None = Field(default=None, primary_key=True)
    navigator_id: int = Field(foreign_key="navigator.id", index=True)
    role: str = Field(max_length=10)  # primary | backup
    days: str = Field(max_length=40)  # "mon,tue,wed,thu,fri"
    start: str = Field(max_length=5)  # "HH:MM"
    end: str = Field(max_length=5)  # "HH:MM" or "24:00"
    timezone: str = Field(default="UTC", max_length=64)
    created_at: datetime = _created()


class EscalationAlert(SQLModel, table=True):
    """One alert: an escalation, at one level of the chain, to one navigator on one channel.

    The unique constraint is what makes "never two alerts for one level" hold when the
    periodic check runs twice or a worker dies and the work is done again.
    """

    __tablename__ = "escalation_alert"
    __table_args__ = (sa.UniqueConstraint("escalation_id", "level", "navigator_id", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    escalation_id: int = Field(foreign_key="escalation.id", index=True)
    level: int
    navigator_id: int = Field(foreign_key="navigator.id", index=True)
    channel: str = Field(max_length=10)  # sms | whatsapp | email
    status: str = Field(default="pending", max_length=12, index=True)  # pending|queued|sent|failed
    attempts: int = 0
    due_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), index=True))
    claimed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime()))
    message_id: int | None = Field(default=None, foreign_key="message.id")  # sms / whatsapp
    last_error: str | None = Field(default=None, max_length=200)
    created_at: datetime = _created()
    updated_at: datetime = _created()
