"""The audit trail: append-only and hash-chained.

Each entry's hash covers its content and the previous entry's hash, so editing or deleting
any row breaks the chain from that row on; `verify` finds the first break. Writers take a
lock on the chain head so concurrent writers on several machines still form one chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from .store.models import AuditEntry
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
    last = session.exec(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).first()  # type: ignore[union-attr]
    prev = last or GENESIS
    at = at or utcnow()
    old_json, new_json = _canonical(old), _canonical(new)
    entry = AuditEntry(at=at, actor=actor, action=action, entity=entity,
                       entity_id=str(entity_id), old_json=old_json, new_json=new_json,
                       prev_hash=prev,
                       hash=_digest(prev, at, actor, action, entity, str(entity_id),
                                    old_json, new_json))
    session.add(entry)
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
    return breaks
