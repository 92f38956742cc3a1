"""Staff operations on participants: enrol one or a CSV file, export everything, erase.

Input is validated here in full before anything is written (table models skip pydantic
validation), and every operation is audited with the staff member as actor.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import hmac
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlmodel import Session, col, select, update

from . import audit, nudges, outbox, participants
from .engine.languages import SUPPORTED, primary
from .i18n import negotiate
from .store.models import (
    Answer,
    AuditEntry,
    ConsentChange,
    ConversationSession,
    Escalation,
    Message,
    Participant,
    Visit,
)
from .store.types import utcnow

CHANNELS = ("sms", "whatsapp")
CSV_COLUMNS = ("code", "phone", "language", "timezone", "channel", "checkin_time")
REQUIRED_COLUMNS = ("code", "phone")
PSEUDONYM_PREFIX = "ps-"
OPEN_SESSION_STATUSES = ("active", "waiting")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HHMM = re.compile(r"(\d{1,2}):(\d{2})")


def staff_actor(name: str | None = None) -> str:
    """`staff:<name>`, the OS user unless the operator names themselves."""
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry, e.g. in a bare container
            name = "unknown"
    return f"staff:{name}"[:64]


# ---- validation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    code: str
    phone: str
    language: str
    timezone: str
    channel: str
    checkin_time: str | None


class InvalidInput(ValueError):
    """Every problem found, each a line a coordinator can act on."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def check_code(raw: str) -> tuple[str, str | None]:
    code = raw.strip()
    if not code:
        return code, "code is missing"
    if len(code) > 40 or not _CODE.fullmatch(code):
        return code, (f'code "{code}" must be 1-40 letters, digits, ".", "_" or "-", '
                      "starting with a letter or digit")
    if code.startswith(PSEUDONYM_PREFIX):
        return code, f'code "{code}" starts with "{PSEUDONYM_PREFIX}", kept for erased participants'
    return code, None


def check_phone(raw: str, region: str | None) -> tuple[str, str | None]:
    text = raw.strip()
    if not text:
        return text, "phone is missing"
    try:
        return participants.normalise_phone(text, region), None
    except participants.InvalidPhone:
        return text, f'phone "{text}" is not a valid phone number'


def check_language(raw: str, default: str) -> tuple[str, str | None]:
    text = raw.strip()
    if not text:
        return default, None
    # An unknown language is a typo to fix, not something to quietly replace with the default.
    if primary(text) not in SUPPORTED:
        return text, f'language "{text}" is not supported (use one of {", ".join(SUPPORTED)})'
    return negotiate(text, default), None


def check_timezone(raw: str) -> tuple[str, str | None]:
    text = raw.strip()
    if not text:
        return "UTC", None
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return text, f'timezone "{text}" is not an IANA time zone (like America/Chicago)'
    return text, None


def check_channel(raw: str) -> tuple[str, str | None]:
    text = raw.strip().lower() or "sms"
    if text not in CHANNELS:
        return text, f'channel "{raw.strip()}" must be sms or whatsapp'
    return text, None


def check_checkin_time(raw: str) -> tuple[str | None, str | None]:
    text = raw.strip()
    if not text:
        return None, None
    m = _HHMM.fullmatch(text)
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        return text, f'check-in time "{text}" must be HH:MM, 00:00 to 23:59'
    return f"{int(m[1]):02d}:{m[2]}", None


def check_enrolment(row: dict[str, str], *, region: str | None,
                    default_language: str) -> tuple[Enrolment | None, list[str]]:
    code, e1 = check_code(row.get("code") or "")
    phone, e2 = check_phone(row.get("phone") or "", region)
    language, e3 = check_language(row.get("language") or "", default_language)
    timezone, e4 = check_timezone(row.get("timezone") or "")
    channel, e5 = check_channel(row.get("channel") or "")
    checkin_time, e6 = check_checkin_time(row.get("checkin_time") or "")
    problems = [e for e in (e1, e2, e3, e4, e5, e6) if e]
    if problems:
        return None, problems
    return Enrolment(code, phone, language, timezone, channel, checkin_time), []


def _enrolled(session: Session, codes: Iterable[str], phones: Iterable[str]
              ) -> tuple[set[str], set[str]]:
    codes, phones = list(codes), list(phones)
    taken_codes = set(session.exec(select(Participant.code)
                                   .where(col(Participant.code).in_(codes))).all())
    taken_phones = {p for p in session.exec(select(Participant.phone)
                                            .where(col(Participant.phone).in_(phones))).all()
                    if p}
    return taken_codes, taken_phones


# ---- enrolment --------------------------------------------------------------------------------


def enrol(session: Session, enrolment: Enrolment, *, actor: str) -> Participant:
    """Add one participant (already validated) after checking code and phone are free."""
    taken_codes, taken_phones = _enrolled(session, [enrolment.code], [enrolment.phone])
    problems = []
    if taken_codes:
        problems.append(f'code "{enrolment.code}" is already enrolled')
    if taken_phones:
        problems.append(f'phone "{enrolment.phone}" is already enrolled')
    if problems:
        raise InvalidInput(problems)
    return participants.add(session, actor=actor, phone=enrolment.phone, code=enrolment.code,
                            language=enrolment.language, timezone=enrolment.timezone,
                            channel=enrolment.channel, checkin_time=enrolment.checkin_time)


def read_enrolments(data: bytes, *, region: str | None, default_language: str,
                    session: Session) -> list[Enrolment]:
    """Parse and check a whole CSV file; raises InvalidInput listing every problem."""
    try:
        text = data.decode("utf-8-sig")  # spreadsheets often add a byte-order mark
    except UnicodeDecodeError as exc:
        raise InvalidInput([f"the file is not UTF-8 text (byte {exc.start}); "
                            "save it as CSV UTF-8"]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if not header:
        raise InvalidInput(["the file is empty"])
    reader.fieldnames = header
    problems = [f'unknown column "{name}" (expected {", ".join(CSV_COLUMNS)})'
                for name in header if name not in CSV_COLUMNS]
    problems += [f'column "{name}" is missing' for name in REQUIRED_COLUMNS
                 if name not in header]
    if problems:
        raise InvalidInput(problems)

    rows: list[tuple[int, Enrolment]] = []
    first_row_of: dict[tuple[str, str], int] = {}
    shown_phone: dict[int, str] = {}
    for number, row in enumerate(reader, start=2):  # spreadsheet numbering: header is row 1
        if None in row:
            problems.append(f"row {number}: more values than columns")
            continue
        values = {k: v or "" for k, v in row.items()}
        if not any(v.strip() for v in values.values()):
            continue  # blank lines at the end of exported sheets
        enrolment, errors = check_enrolment(values, region=region,
                                            default_language=default_language)
        problems += [f"row {number}: {e}" for e in errors]
        if enrolment is None:
            continue
        typed_phone = values["phone"].strip()
        for kind, value, shown in (("code", enrolment.code, f'code "{enrolment.code}"'),
                                   ("phone", enrolment.phone, f'phone "{typed_phone}"')):
            seen = first_row_of.setdefault((kind, value), number)
            if seen != number:
                problems.append(f"row {number}: {shown} is also on row {seen}")
        rows.append((number, enrolment))
        shown_phone[number] = typed_phone
    if not rows and not problems:
        problems.append("the file has no participants")

    taken_codes, taken_phones = _enrolled(session, [e.code for _, e in rows],
                                          [e.phone for _, e in rows])
    for number, e in rows:
        if e.code in taken_codes:
            problems.append(f'row {number}: code "{e.code}" is already enrolled')
        if e.phone in taken_phones:
            problems.append(f'row {number}: phone "{shown_phone[number]}" is already enrolled')
    if problems:
        problems.sort(key=_row_number)
        raise InvalidInput(problems)
    return [e for _, e in rows]


def _row_number(problem: str) -> int:
    m = re.match(r"row (\d+):", problem)
    return int(m[1]) if m else 0


def import_enrolments(session: Session, enrolments: list[Enrolment], *, actor: str,
                      source: str, sha256: str) -> list[Participant]:
    """Enrol them all in the caller's transaction: all or nothing."""
    added = [participants.add(session, actor=actor, phone=e.phone, code=e.code,
                              language=e.language, timezone=e.timezone, channel=e.channel,
                              checkin_time=e.checkin_time)
             for e in enrolments]
    audit.record(session, actor=actor, action="participant.import", entity="import",
                 entity_id=source[-64:], new={"participants": len(added), "sha256": sha256})
    return added


# ---- finding, listing ------------------------------------------------------------------------


def find(session: Session, ident: str) -> Participant | None:
    """By study code (or pseudonym); a number that is no code is taken as the id."""
    ident = ident.strip()
    p = session.exec(select(Participant).where(Participant.code == ident)).first()
    if p is None:
        p = session.exec(select(Participant).where(Participant.pseudonym == ident)).first()
    if p is None and ident.isdigit():
        p = session.get(Participant, int(ident))
    return p


# ---- export -----------------------------------------------------------------------------------


def _row(obj: Any) -> dict[str, Any]:
    """A table row as JSON-ready data; `*_json` text columns are decoded."""
    out: dict[str, Any] = {}
    for column in sa.inspect(type(obj)).columns:  # table order reads better than dict order
        name, value = column.key, getattr(obj, column.key)
        if name.endswith("_json") and isinstance(value, str):
            try:
                out[name.removesuffix("_json")] = json.loads(value)
                continue
            except ValueError:
                pass
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _messages_of(p: Participant) -> Any:
    # Messages from the number before it was enrolled carry the address but no participant.
    cond = col(Message.participant_id) == p.id
    if p.phone:
        cond = cond | col(Message.address).in_([p.phone, f"whatsapp:{p.phone}"])
    return cond


def export(session: Session, p: Participant, *, actor: str) -> dict[str, Any]:
    """Everything held about `p`, for a subject access request; the export is audited."""
    def rows(model: Any, *where: Any, order: Any) -> list[dict[str, Any]]:
        return [_row(r) for r in session.exec(select(model).where(*where).order_by(order))]

    data = {
        "exported_at": utcnow().isoformat(),
        "participant": _row(p),
        "consent_history": rows(ConsentChange, ConsentChange.participant_id == p.id,
                                order=ConsentChange.id),
        "visits": rows(Visit, Visit.participant_id == p.id, order=Visit.scheduled_at),
        "sessions": rows(ConversationSession, ConversationSession.participant_id == p.id,
                         order=ConversationSession.created_at),
        "messages": rows(Message, _messages_of(p), order=Message.id),
        "answers": rows(Answer, Answer.participant_id == p.id, order=Answer.id),
        "escalations": rows(Escalation, Escalation.participant_id == p.id, order=Escalation.id),
        "audit": rows(AuditEntry, audit.about(p), order=AuditEntry.id),
    }
    audit.record(session, actor=actor, action="participant.export", entity="participant",
                 entity_id=p.id)
    return data


# ---- erasure ----------------------------------------------------------------------------------


def pseudonym(secret_key: str, code: str) -> str:
    """Stable for a code and key, meaningless without the key."""
    digest = hmac.new(secret_key.encode(), code.encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:12]


@dataclass
class Erasure:
    participant_id: int
    pseudonym: str
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


class AlreadyErased(ValueError):
    pass


def _count(session: Session, model: Any, *where: Any) -> int:
    return session.exec(select(sa.func.count()).select_from(model).where(*where)).one()


def erase(session: Session, p: Participant, *, actor: str, secret_key: str) -> Erasure:
    """Stop all contact and delete what identifies `p`; keep protocol data under a pseudonym.

    Runs in the caller's transaction. The audit trail is kept as it is (append-only and
    hash-chained): its entries hold masked numbers and keyed digests of answers and extra
    fields, never the values, so nothing deleted here lives on there.
    """
    if p.erased_at is not None:
        raise AlreadyErased(f"participant {p.id} was erased on {p.erased_at:%Y-%m-%d}")
    assert p.id is not None
    now = utcnow()
    alias = pseudonym(secret_key, p.code)
    result = Erasure(participant_id=p.id, pseudonym=alias)
    n = result.counts
    phone = p.phone

    participants.set_consent(session, p, "opted_out", source="erasure", actor=actor)

    # What has not left for Twilio, by the outbox's own rule; and nothing planned fires.
    n["messages_cancelled"] = outbox.cancel_pending(session, p.id, "participant erased", now)
    nudges.cancel_pending_nudges(session, p.id, now)
    msgs = _messages_of(p)
    n["messages_cleared"] = _count(session, Message, msgs, col(Message.body).isnot(None)
                                   | col(Message.address).isnot(None))
    n["messages_kept"] = _count(session, Message, msgs)
    session.exec(update(Message).where(msgs)
                 .values(body=None, address=None, updated_at=now))

    sessions = col(ConversationSession.participant_id) == p.id
    n["sessions_stopped"] = _count(session, ConversationSession, sessions,
                                   col(ConversationSession.status).in_(OPEN_SESSION_STATUSES))
    session.exec(update(ConversationSession)
                    .where(sessions, col(ConversationSession.status).in_(OPEN_SESSION_STATUSES))
                    .values(status="interrupted", ended_at=now))
    n["sessions_cleared"] = _count(session, ConversationSession, sessions)
    session.exec(update(ConversationSession).where(sessions)
                    .values(state_json="{}", wait_id=None, updated_at=now))

    text_answers = (col(Answer.participant_id) == p.id) & (col(Answer.answer_type) == "text")
    n["text_answers_deleted"] = _count(session, Answer, text_answers)
    for answer in session.exec(select(Answer).where(text_answers)):
        session.delete(answer)
    n["answers_kept"] = _count(session, Answer, Answer.participant_id == p.id)

    notes = (col(Escalation.participant_id) == p.id) & col(Escalation.resolution_note).isnot(None)
    n["escalation_notes_cleared"] = _count(session, Escalation, notes)
    session.exec(update(Escalation).where(notes).values(resolution_note=None, updated_at=now))
    n["escalations_kept"] = _count(session, Escalation, Escalation.participant_id == p.id)

    field_names = sorted(participants.fields(p))
    # Counted now: entries acted by the participant name the code that is about to go.
    n["audit_entries_kept"] = _count(session, AuditEntry, audit.about(p)) + 1
    n["profile_fields_deleted"] = len(field_names)
    n["consent_changes_kept"] = _count(session, ConsentChange, ConsentChange.participant_id == p.id)
    n["visits_kept"] = _count(session, Visit, Visit.participant_id == p.id)

    # Changed directly, not through participants.update: the erase entry says it all, and
    # the old values have no place in the permanent trail, not even as digests.
    p.phone, p.fields_json, p.code, p.pseudonym = None, "{}", alias, alias
    p.erased_at = p.updated_at = now
    session.add(p)
    session.flush()
    audit.record(session, actor=actor, action="participant.erase", entity="participant",
                 entity_id=p.id, new={"pseudonym": alias, **n}, at=now)

    result.removed = [
        f"phone number ({participants.mask_phone(phone)})" if phone else "phone number (none held)",
        f"study code (replaced by {alias})",
        _n(n["profile_fields_deleted"], "extra profile field")
        + (f" ({', '.join(field_names)})" if field_names else ""),
        f"text and phone number of {_n(n['messages_cleared'], 'message')}",
        f"{_n(n['messages_cancelled'], 'unsent outbound message')} (cancelled)",
        f"saved state of {_n(n['sessions_cleared'], 'conversation session')} "
        f"({n['sessions_stopped']} still open, now stopped)",
        _n(n["text_answers_deleted"], "free-text answer"),
        _n(n["escalation_notes_cleared"], "escalation resolution note"),
    ]
    result.kept = [
        f"participant {p.id} as {alias}: language {p.language}, time zone {p.timezone}, "
        f"channel {p.channel}, consent opted_out (no further contact)",
        _n(n["answers_kept"], "protocol answer"),
        _n(n["consent_changes_kept"], "consent history entry", "consent history entries"),
        _n(n["visits_kept"], "visit"),
        f"{_n(n['sessions_cleared'], 'session record')} (flow, version, status, times)",
        f"{_n(n['messages_kept'], 'message record')} "
        "(direction, status, times; no text or number)",
        f"{_n(n['escalations_kept'], 'escalation')} (severity, reason, times)",
        f"{_n(n['audit_entries_kept'], 'audit entry', 'audit entries')}, unchanged "
        "(append-only; answers and extra fields are in it as digests only)",
    ]
    return result
