"""The audit trail: append-only and hash-chained.

Each entry's hash covers its content and the previous entry's hash, so editing or deleting
any row breaks the chain from that row on; `verify` finds the first break. Writers take a
lock on the chain head so concurrent writers on several machines still form one chain.

Deleting the newest entries leaves a valid, shorter chain, so the `audit_head` row keeps the
newest hash and the entry count, written in the same transaction as each entry. New entries
chain onto that head (not onto whatever row is last), so a deleted tail also shows up as a
break before the next entry. Someone able to rewrite the head, the rows and every hash after
them is out of reach of any in-database check; export `verify`'s head hash elsewhere for that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from .store.models import AuditEntry, AuditHead, Participant
from .store.types import utcnow

GENESIS = "0" * 64
_LOCK_KEY = 0x7A11B07  # PostgreSQL advisory lock id for the chain head


def _canonical(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str,
                      separators=(",", ":"))


def _digest(prev_hash: str, at: datetime, actor: str, action: str, entity: str,
            entity_id: str, old_json: str | None, new_json: str | None) -> str:
    payload = "\x1f".join([prev_hash, at.isoformat(), actor, action, entity, entity_id,
                           old_json or "", new_json or ""])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record(session: Session, *, actor: str, action: str, entity: str, entity_id: Any,
           old: Any = None, new: Any = None, at: datetime | None = None) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits with the change it records)."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    head = session.get(AuditHead, 1, populate_existing=True)
    prev = head.hash if head is not None else GENESIS
    at = at or utcnow()
    old_json, new_json = _canonical(old), _canonical(new)
    entry = AuditEntry(at=at, actor=actor, action=action, entity=entity,
                       entity_id=str(entity_id), old_json=old_json, new_json=new_json,
                       prev_hash=prev,
                       hash=_digest(prev, at, actor, action, entity, str(entity_id),
                                    old_json, new_json))
    session.add(entry)
    if head is None:
        head = AuditHead(id=1, hash=entry.hash, entries=1, updated_at=at)
    else:
        head.hash, head.entries, head.updated_at = entry.hash, head.entries + 1, at
    session.add(head)
    session.flush()
    return entry


@dataclass(frozen=True)
class Break:
    entry_id: int | None
    message: str


def verify(session: Session) -> list[Break]:
    """Walk the chain from the start; report edited, deleted or inserted rows."""
    breaks: list[Break] = []
    prev = GENESIS
    last_id = 0
    count = 0
    for entry in session.exec(select(AuditEntry).order_by(AuditEntry.id)):  # type: ignore[arg-type]
        assert entry.id is not None
        if entry.prev_hash != prev:
            breaks.append(Break(entry.id, f"entry {entry.id} does not follow entry {last_id}: "
                                "an entry before it was deleted or changed"))
        expected = _digest(entry.prev_hash, entry.at, entry.actor, entry.action, entry.entity,
                           entry.entity_id, entry.old_json, entry.new_json)
        if expected != entry.hash:
            breaks.append(Break(entry.id, f"entry {entry.id} was edited after it was written"))
        prev = entry.hash
        last_id = entry.id
        count += 1
    head = session.get(AuditHead, 1, populate_existing=True)
    if head is None:
        if count:
            breaks.append(Break(None, "the audit head row is missing"))
    else:
        if head.hash != prev:
            breaks.append(Break(None, f"the newest entry ({last_id or 'none'}) is not the "
                                "recorded head of the chain: newer entries were deleted"))
        if head.entries != count:
            breaks.append(Break(None, f"{count} entries but the head counts {head.entries}: "
                                "entries were deleted or inserted"))
    return breaks


def head(session: Session) -> AuditHead | None:
    """The newest hash and entry count; worth copying off the database now and then."""
    return session.get(AuditHead, 1)


def about(participant: Participant) -> Any:
    """A filter for the entries about one participant (records of it, or its own actions)."""
    actors = [f"participant:{participant.id}", f"participant:{participant.code}"]
    if participant.pseudonym:
        actors.append(f"participant:{participant.pseudonym}")
    return sa.or_(sa.and_(col(AuditEntry.entity) == "participant",
                          col(AuditEntry.entity_id) == str(participant.id)),
                  col(AuditEntry.actor).in_(actors))
