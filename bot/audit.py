"""The audit trail: append-only and hash-chained, one chain per stream.

Each entry's hash covers its content and the previous entry's hash in its stream, so editing
or deleting any row breaks its chain from that row on; `verify` finds the first break.

Streams: `participant:<id>` holds what concerns one participant (their record, consent, the
answers they give); `system` holds everything else (imports, staff and system actions) and,
from before streams existed, the one chain all entries used to form. Writers lock only their
stream's head row, so two participants' messages never wait for each other, while writes to
one stream stay ordered as before.

A stream's first entry belongs to two chains: it follows the `system` chain (whose next entry
follows it) and starts its own. So a stream deleted whole, entries and head, still breaks the
system chain, and an entry cannot be moved to another stream unnoticed.

Entries record that a value was given or changed, not the value: the trail cannot forget,
and erasure must be able to. Answers and extra profile fields go in as `value_hmac`, a keyed
digest that shows later whether the stored value is still the one recorded
(`verify_answers`); phone numbers go in masked. Language, time zone, channel, consent and
such identify no one and go in as they are.

Deleting a stream's newest entries leaves a valid, shorter chain, so `audit_head` keeps each
stream's newest hash and entry count, written in the same transaction as each entry; new
entries chain onto that head (not onto whatever row is last), so a deleted tail also shows up
as a break before the next entry. Someone able to rewrite heads, rows and every hash after
them is out of reach of any in-database check; export the fingerprint `verify` prints
(`head`) elsewhere for that.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from .store.db import DriverSQL
from .store.models import Answer, AuditEntry, AuditHead, Participant
from .store.types import utcnow

GENESIS = "0" * 64
SYSTEM = "system"


def participant_stream(participant_id: Any) -> str:
    return f"participant:{participant_id}"


def _canonical(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str,
                      separators=(",", ":"))


#: Hex digits kept of a value's HMAC: 128 bits, past guessing or forging.
VALUE_HMAC_DIGITS = 32


def value_hmac(secret_key: str, about: str, value: Any) -> str:
    """HMAC-SHA256, under SECRET_KEY, of `about` and the value's canonical JSON.

    Keyed, because a plain hash of a yes, a score or a first name is undone by hashing every
    candidate. `about` names the value's place (`answer:17`, `participant:3/first_name`), so
    equal values in different places get unrelated digests: the trail does not show that an
    erased participant's name was another participant's.
    """
    text = about + "\x1f" + json.dumps(value, sort_keys=True, ensure_ascii=False, default=str,
                                        separators=(",", ":"))
    digest = hmac.new(secret_key.encode(), text.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:VALUE_HMAC_DIGITS]


def answer_about(answer_id: Any) -> str:
    return f"answer:{answer_id}"


def _digest(prev_hash: str, at: datetime, actor: str, action: str, entity: str,
            entity_id: str, old_json: str | None, new_json: str | None) -> str:
    # Also spelled in SQL, in _RECORD_PG: prev_hash || _tail(...), as UTF-8, SHA-256, hex.
    payload = prev_hash + _tail(at, actor, action, entity, entity_id, old_json, new_json)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _tail(at: datetime, actor: str, action: str, entity: str, entity_id: str,
          old_json: str | None, new_json: str | None) -> str:
    """What an entry's hash covers after the previous hash."""
    return "\x1f" + "\x1f".join([at.isoformat(), actor, action, entity, entity_id,
                                 old_json or "", new_json or ""])


# ---- writing ---------------------------------------------------------------------------------
#
# An entry is written with every answer, so its statements go straight to the driver's cursor
# (DriverSQL), in the caller's transaction; through the ORM they cost several times more.

_H = AuditHead.__table__  # type: ignore[attr-defined]

#: The stream's head, locked until commit (on SQLite, BEGIN IMMEDIATE already serialises).
_LOCK = DriverSQL("SELECT hash, entries FROM audit_head WHERE stream = ?",
                  "SELECT hash, entries FROM audit_head WHERE stream = %s FOR UPDATE")
_INSERT = DriverSQL(
    "INSERT INTO audit_entry (stream, at, actor, action, entity, entity_id, old_json, "
    "new_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id")
_MOVE = DriverSQL("UPDATE audit_head SET hash = ?, entries = ?, updated_at = ? WHERE stream = ?")
#: PostgreSQL, the usual case in one round trip: lock the head, write the entry hashed onto
#: it, move the head. The server computes `_digest` (`verify` recomputes it in Python for
#: every entry, so the two cannot drift apart unnoticed). No row: the stream has no head yet.
_RECORD_PG = DriverSQL(
    "WITH head AS (SELECT hash FROM audit_head WHERE stream = ? FOR UPDATE), "
    "entry AS (INSERT INTO audit_entry (stream, at, actor, action, entity, entity_id, "
    "old_json, new_json, prev_hash, hash) SELECT ?, ?, ?, ?, ?, ?, ?, ?, head.hash, "
    "encode(sha256(convert_to(head.hash || ?, 'UTF8')), 'hex') FROM head "
    "RETURNING id, hash), "
    "moved AS (UPDATE audit_head SET hash = entry.hash, entries = audit_head.entries + 1, "
    "updated_at = ? FROM entry WHERE audit_head.stream = ?) "
    "SELECT id, hash FROM entry")
#: PostgreSQL: the entry and the (already locked) head move in one round trip.
_APPEND_PG = DriverSQL(
    "WITH e AS (INSERT INTO audit_entry (stream, at, actor, action, entity, entity_id, "
    "old_json, new_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id) "
    "UPDATE audit_head SET hash = ?, entries = ?, updated_at = ? WHERE stream = ? "
    "RETURNING (SELECT id FROM e)")


@functools.cache
def _new_head(dialect: str) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(_H).on_conflict_do_nothing(index_elements=["stream"])


@dataclass(frozen=True, slots=True)
class Recorded:
    """The entry just written."""

    id: int
    stream: str
    hash: str


@dataclass(frozen=True, slots=True)
class _Content:
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    old_json: str | None
    new_json: str | None

    def row(self, stream: str, prev: str) -> tuple[Any, ...]:
        """The entry's columns, in `_INSERT`'s order."""
        digest = _digest(prev, self.at, self.actor, self.action, self.entity, self.entity_id,
                         self.old_json, self.new_json)
        return (stream, self.at, self.actor, self.action, self.entity, self.entity_id,
                self.old_json, self.new_json, prev, digest)


def _stream_for(entity: str, entity_id: str) -> str:
    return participant_stream(entity_id) if entity == "participant" else SYSTEM


def record(session: Session, *, actor: str, action: str, entity: str, entity_id: Any,
           old: Any = None, new: Any = None, at: datetime | None = None,
           stream: str | None = None) -> Recorded:
    """Append one entry in the caller's transaction (it commits with the change it records).

    `stream`: by default the participant's own stream for entity "participant", else
    `system`; pass `participant_stream(id)` for other entities about one participant.
    """
    # The change being recorded takes its row locks before the chain's (a no-op when the
    # session holds no pending change): the webhook locks the participant first too, so the
    # two never wait for each other in opposite orders.
    session.flush()
    conn = session.connection()
    entity_id = str(entity_id)
    stream = stream or _stream_for(entity, entity_id)
    # Stored as UTC and read back as UTC, so the hash must be of the UTC time.
    content = _Content((at or utcnow()).astimezone(UTC), actor, action, entity, entity_id,
                       _canonical(old), _canonical(new))
    if conn.dialect.name == "postgresql":
        c = content
        done = _RECORD_PG.first(conn, (
            stream, stream, c.at, c.actor, c.action, c.entity, c.entity_id, c.old_json,
            c.new_json, _tail(c.at, c.actor, c.action, c.entity, c.entity_id, c.old_json,
                              c.new_json), c.at, stream))
        if done is not None:
            return Recorded(int(done[0]), stream, done[1])
    head = _LOCK.first(conn, (stream,))
    if head is None:
        if stream != SYSTEM:
            return _open(conn, stream, content)
        head = _system_head(conn, content.at)
    return _append(conn, stream, head[0], int(head[1]), content)


def _append(conn: Connection, stream: str, prev: str, count: int,
            content: _Content) -> Recorded:
    """Write the entry and move the (locked) head onto it."""
    row = content.row(stream, prev)
    move = (row[-1], count + 1, content.at, stream)
    if conn.dialect.name == "postgresql":
        entry_id = _APPEND_PG.first(conn, row + move)[0]
    else:
        entry_id = _INSERT.first(conn, row)[0]
        _MOVE.run(conn, move)
    return Recorded(int(entry_id), stream, row[-1])


def _system_head(conn: Connection, at: datetime) -> Any:
    """The system head, locked; made on the very first entry (racing writers both insert,
    the constraint keeps one row)."""
    head = _LOCK.first(conn, (SYSTEM,))
    if head is None:
        conn.execute(_new_head(conn.dialect.name), {"stream": SYSTEM, "hash": GENESIS,
                                                     "entries": 0, "updated_at": at})
        head = _LOCK.first(conn, (SYSTEM,))
    return head


def _open(conn: Connection, stream: str, content: _Content) -> Recorded:
    """A stream's first entry: the next link of the system chain and the start of its own."""
    system = _system_head(conn, content.at)
    # Holding the system head, look again: whoever opened the stream meanwhile held it too.
    head = _LOCK.first(conn, (stream,))
    if head is not None:
        return _append(conn, stream, head[0], int(head[1]), content)
    row = content.row(stream, system[0])
    entry_id = _INSERT.first(conn, row)[0]
    _MOVE.run(conn, (row[-1], int(system[1]) + 1, content.at, SYSTEM))
    conn.execute(_new_head(conn.dialect.name), {"stream": stream, "hash": row[-1],
                                                "entries": 1, "updated_at": content.at})
    return Recorded(int(entry_id), stream, row[-1])


# ---- checking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    entry_id: int | None
    message: str


@dataclass(slots=True)
class _Chain:
    name: str
    prev: str = GENESIS
    last_id: int = 0
    count: int = 0

    def follows(self, entry_id: int, prev_hash: str) -> Break | None:
        if prev_hash == self.prev:
            return None
        where = f"does not follow entry {self.last_id}" if self.last_id else "is not the start"
        return Break(entry_id, f"entry {entry_id} {where} in stream {self.name}: an entry "
                     "before it was deleted or changed")

    def advance(self, entry_id: int, digest: str) -> None:
        self.prev, self.last_id, self.count = digest, entry_id, self.count + 1


_E = AuditEntry.__table__  # type: ignore[attr-defined]


def verify(session: Session) -> list[Break]:
    """Walk every stream from its start; report edited, deleted or inserted rows."""
    conn = session.connection()
    breaks: list[Break] = []
    system = _Chain(SYSTEM)
    chains = {SYSTEM: system}
    rows = conn.execution_options(yield_per=1000).execute(
        sa.select(_E.c.id, _E.c.stream, _E.c.at, _E.c.actor, _E.c.action, _E.c.entity,
                  _E.c.entity_id, _E.c.old_json, _E.c.new_json, _E.c.prev_hash, _E.c.hash)
        .order_by(_E.c.id))
    for e in rows:
        chain = chains.get(e.stream)
        opening = chain is None
        if chain is None:  # a stream's first entry follows the system chain
            chain = chains[e.stream] = _Chain(e.stream)
        problem = (system if opening else chain).follows(e.id, e.prev_hash)
        if problem is not None:
            breaks.append(problem)
        expected = _digest(e.prev_hash, e.at, e.actor, e.action, e.entity, e.entity_id,
                           e.old_json, e.new_json)
        if expected != e.hash:
            breaks.append(Break(e.id, f"entry {e.id} was edited after it was written"))
        if opening:
            system.advance(e.id, e.hash)
        chain.advance(e.id, e.hash)
    heads = {h.stream: h for h in conn.execute(sa.select(_H.c.stream, _H.c.hash,
                                                         _H.c.entries))}
    for name in sorted({n for n, c in chains.items() if c.count} | heads.keys()):
        chain = chains.get(name) or _Chain(name)
        head = heads.get(name)
        if head is None:
            breaks.append(Break(None, f"the audit head of stream {name} is missing"))
            continue
        if head.hash != chain.prev:
            breaks.append(Break(None, f"the newest entry of stream {name} "
                                f"({chain.last_id or 'none'}) is not its recorded head: "
                                "newer entries were deleted"))
        if head.entries != chain.count:
            breaks.append(Break(None, f"stream {name}: {chain.count} entries but the head "
                                f"counts {head.entries}: entries were deleted or inserted"))
    return breaks


# ---- answers against their entries ------------------------------------------------------------

#: What an `answer.recorded` entry holds besides `value_hmac`, all checked against the row.
ANSWER_FIELDS = ("flow_id", "flow_version", "session_id", "step", "key", "answer_type")

_A = Answer.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class AnswerProblem:
    answer_id: int | None
    entry_id: int | None
    message: str


@dataclass
class AnswerCheck:
    checked: int = 0
    #: Free-text answers gone with their participant's erasure, as erasure means them to be.
    erased: int = 0
    problems: list[AnswerProblem] = field(default_factory=list)


def verify_answers(session: Session, secret_key: str) -> AnswerCheck:
    """Check every answer against the entry that recorded it: an answer changed, deleted or
    added in the database behind the bot's back is reported.

    Both tables are read in answer id order and walked side by side, so memory stays flat
    however many answers there are. Entries without `value_hmac` (written before entries
    held digests) are passed over.
    """
    conn = session.connection()
    check = AnswerCheck()
    erased_at: dict[str, int] = {
        stream: first for stream, first in conn.execute(
            sa.select(_E.c.stream, sa.func.min(_E.c.id))
            .where(_E.c.action == "participant.erase", _E.c.entity == "participant")
            .group_by(_E.c.stream))}
    entries = conn.execute(
        sa.select(_E.c.id, _E.c.stream, _E.c.entity_id, _E.c.new_json)
        .where(_E.c.action == "answer.recorded", _E.c.entity == "answer")
        # Decimal ids in numeric order, without a cast that would fail on anything else.
        .order_by(sa.func.length(_E.c.entity_id), _E.c.entity_id, _E.c.id)
        .execution_options(yield_per=1000))
    answers = conn.execute(sa.select(_A).order_by(_A.c.id).execution_options(yield_per=1000))
    value_only: list[AnswerProblem] = []

    def gone(entry: Any, new: dict[str, Any] | None) -> None:
        if new is None:
            return
        erasure = erased_at.get(entry.stream)
        if new.get("answer_type") == "text" and erasure is not None and erasure > entry.id:
            check.erased += 1
            return
        check.problems.append(AnswerProblem(int(entry.entity_id), entry.id,
                                            f"answer {entry.entity_id} (audit entry {entry.id}) "
                                            "was deleted"))

    def compare(answer: Any, entry: Any, new: dict[str, Any] | None) -> None:
        if new is None:
            return
        check.checked += 1
        differs = [name for name in ANSWER_FIELDS if new.get(name) != getattr(answer, name)]
        if entry.stream != participant_stream(answer.participant_id):
            differs.insert(0, "participant")
        try:
            value = json.loads(answer.value_json)
        except ValueError:
            differs.append("value")
        else:
            if value_hmac(secret_key, answer_about(answer.id), value) != new["value_hmac"]:
                differs.append("value")
        if differs:
            problem = AnswerProblem(answer.id, entry.id, f"answer {answer.id} no longer "
                                    f"matches audit entry {entry.id}: {', '.join(differs)}")
            (value_only if differs == ["value"] else check.problems).append(problem)

    groups = _by_answer(entries, check)
    group = next(groups, None)
    for answer in answers:
        while group is not None and group[0] < answer.id:
            for entry, new in group[1]:
                gone(entry, new)
            group = next(groups, None)
        if group is None or group[0] != answer.id:
            check.problems.append(AnswerProblem(answer.id, None, f"answer {answer.id} has no "
                                                "audit entry: it was not stored by the bot"))
            continue
        # SQLite may give a deleted newest answer's id to the next one: that one is the last.
        *older, (entry, new) = group[1]
        for old_entry, old_new in older:
            gone(old_entry, old_new)
        compare(answer, entry, new)
        group = next(groups, None)
    while group is not None:
        for entry, new in group[1]:
            gone(entry, new)
        group = next(groups, None)

    if check.checked > 1 and len(value_only) == check.checked:
        check.problems.append(AnswerProblem(None, None, (
            f"none of the {check.checked} answers matches the digest of its audit entry: "
            "SECRET_KEY is not the one the bot runs with, or every answer was changed")))
    else:
        check.problems.extend(value_only)
        check.problems.sort(key=lambda p: p.answer_id or 0)
    return check


_Group = tuple[int, list[tuple[Any, dict[str, Any] | None]]]


def _by_answer(entries: Iterable[Any], check: AnswerCheck) -> Iterator[_Group]:
    """`answer.recorded` entries, grouped by answer id, in answer id order, each with its
    decoded `new` (None when it holds no digest)."""
    group: _Group | None = None
    for e in entries:
        try:
            new = json.loads(e.new_json or "null")
        except ValueError:
            new = None
        if not (isinstance(new, dict) and isinstance(new.get("value_hmac"), str)):
            new = None
        if not (e.entity_id.isascii() and e.entity_id.isdigit()
                and str(int(e.entity_id)) == e.entity_id):
            if new is not None:
                check.problems.append(AnswerProblem(None, e.id, f"audit entry {e.id} names "
                                                    f"no answer id ({e.entity_id!r})"))
            continue
        answer_id = int(e.entity_id)
        if group is not None and group[0] == answer_id:
            group[1].append((e, new))
            continue
        if group is not None:
            yield group
        group = (answer_id, [(e, new)])
    if group is not None:
        yield group


@dataclass(frozen=True)
class Fingerprint:
    """Every stream's head in one hash: copy it off the database now and then."""

    streams: int
    hash: str


def head(session: Session) -> Fingerprint | None:
    """The fingerprint of all heads (None before the first entry)."""
    rows = session.connection().execute(
        sa.select(_H.c.stream, _H.c.hash, _H.c.entries).order_by(_H.c.stream)).all()
    if not rows:
        return None
    text = "\n".join(f"{r.stream}\x1f{r.hash}\x1f{r.entries}" for r in rows)
    return Fingerprint(len(rows), hashlib.sha256(text.encode("utf-8")).hexdigest())


def about(participant: Participant) -> Any:
    """A filter for the entries about one participant (records of it, or its own actions)."""
    actors = [f"participant:{participant.id}", f"participant:{participant.code}"]
    if participant.pseudonym:
        actors.append(f"participant:{participant.pseudonym}")
    return sa.or_(sa.and_(col(AuditEntry.entity) == "participant",
                          col(AuditEntry.entity_id) == str(participant.id)),
                  col(AuditEntry.actor).in_(actors))
