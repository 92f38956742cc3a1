"""Answers and profile fields go into the trail as keyed digests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from click.testing import Result
from sqlmodel import Session, select

from bot import audit, participants
from bot.config import Settings
from bot.store.db import get_engine, session_scope
from bot.store.models import Answer, AuditEntry

Cli = Callable[..., Result]
Converse = Callable[..., int]  # the `converse` fixture (conftest.py)
PHONE = "+14155552671"


def _sql(url: str, statement: str, **params: object) -> None:
    with get_engine(url).begin() as conn:
        conn.execute(sa.text(statement), params)


def _detached(db: Session, query: Any) -> list[Any]:
    """Rows read in a transaction of their own: on SQLite an open one holds the write lock."""
    db.rollback()
    rows = list(db.exec(query).all())
    db.expunge_all()
    db.rollback()
    return rows


def _entries(db: Session, action: str) -> list[AuditEntry]:
    return _detached(db, select(AuditEntry).where(AuditEntry.action == action)
                     .order_by(AuditEntry.id))  # type: ignore[arg-type]


def _answers(db: Session) -> list[Answer]:
    return _detached(db, select(Answer).order_by(Answer.id))  # type: ignore[arg-type]


def test_entries_hold_digests_of_answers_not_the_answers(
        converse: Converse, db: Session, settings: Settings) -> None:
    pid = converse("P1", PHONE, "Ana Maria", "7")
    name, pain = _answers(db)
    entries = _entries(db, "answer.recorded")
    assert [e.entity_id for e in entries] == [str(name.id), str(pain.id)]
    assert {e.stream for e in entries} == {f"participant:{pid}"}
    assert "Ana Maria" not in (entries[0].new_json or "")
    first = json.loads(entries[0].new_json or "")
    assert first == {"flow_id": "intake", "flow_version": 1, "session_id": name.session_id,
                     "step": "name", "key": "name", "answer_type": "text",
                     "value_hmac": audit.value_hmac(settings.secret_key, f"answer:{name.id}",
                                                    "Ana Maria")}
    assert len(first["value_hmac"]) == 32
    second = json.loads(entries[1].new_json or "")
    assert (second["answer_type"], second["value_hmac"]) == (
        "number", audit.value_hmac(settings.secret_key, f"answer:{pain.id}", 7))


def test_equal_values_in_different_places_get_unrelated_digests() -> None:
    one = audit.value_hmac("k", "answer:1", "yes")
    assert one == audit.value_hmac("k", "answer:1", "yes")
    assert len({one, audit.value_hmac("k", "answer:2", "yes"),
                audit.value_hmac("k", "answer:1", "no"),
                audit.value_hmac("other key", "answer:1", "yes")}) == 4
    # The canonical JSON: key order and spacing do not matter.
    assert audit.value_hmac("k", "a", {"b": 1, "a": [1, 2]}) == \
        audit.value_hmac("k", "a", json.loads('{ "a": [1,2], "b": 1 }'))


def test_profile_entries_hold_digests_of_extra_fields(db_url: str, settings: Settings) -> None:
    key = settings.secret_key
    with session_scope(db_url) as db:
        p = participants.add(db, actor="staff:test", phone=PHONE, code="P1",
                             extra={"first_name": "Ana", "arm": "B"}, secret_key=key)
        assert participants.update(db, p, actor="staff:test", secret_key=key, language="es",
                                   fields={"first_name": "Bea", "arm": "B", "town": "Ely"})
        assert not participants.update(db, p, actor="staff:test", secret_key=key,
                                       fields={"arm": "B"})
        pid = p.id
    about = f"participant:{pid}/"
    with Session(get_engine(db_url)) as db:
        added, updated = db.exec(select(AuditEntry).order_by(AuditEntry.id)).all()  # type: ignore[arg-type]
    new = json.loads(added.new_json or "")
    assert new["phone"] == "+14*******71" and new["language"] == "en"
    assert new["fields"] == {"arm": audit.value_hmac(key, about + "arm", "B"),
                             "first_name": audit.value_hmac(key, about + "first_name", "Ana")}
    # Only what changed; language in the clear, the extra fields as digests.
    assert json.loads(updated.old_json or "") == {
        "language": "en", "fields": {"first_name": audit.value_hmac(key, about + "first_name",
                                                                    "Ana")}}
    assert json.loads(updated.new_json or "") == {
        "language": "es", "fields": {"first_name": audit.value_hmac(key, about + "first_name",
                                                                    "Bea"),
                                     "town": audit.value_hmac(key, about + "town", "Ely")}}
    trail = f"{added.new_json} {updated.old_json} {updated.new_json}"
    for value in (PHONE, "Ana", "Bea", "Ely"):
        assert value not in trail
