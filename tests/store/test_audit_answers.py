"""Answers and profile fields go into the trail as keyed digests, and `bot audit verify`
checks every stored answer against the digest its entry recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlmodel import Session, select

from bot import audit, participants
from bot.cli import main
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
        converse: Converse, db: Session, settings: Settings, cli: Cli) -> None:
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
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == "OK: 2 answers as recorded"


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


def test_an_answer_changed_in_the_database_is_found(
        converse: Converse, db: Session, db_url: str, cli: Cli) -> None:
    converse("P1", PHONE, "Ana Maria", "7")
    _, pain = _answers(db)
    (_, entry) = _entries(db, "answer.recorded")
    _sql(db_url, "UPDATE answer SET value_json = '3' WHERE id = :i", i=pain.id)
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"MISMATCH at answer {pain.id}: answer {pain.id} no longer matches audit entry "
        f"{entry.id}: value",
        "1 problem in 4 entries and 2 answers"]
    # The chain itself is intact: only the answer check can see this.
    assert audit.verify(db) == []


def test_an_answer_moved_or_relabelled_is_found(
        converse: Converse, db: Session, db_url: str, settings: Settings) -> None:
    converse("P1", PHONE, "Ana Maria", "7")
    other = converse("P2", "+14155552672")
    name, pain = _answers(db)
    _sql(db_url, "UPDATE answer SET participant_id = :p WHERE id = :i", p=other, i=name.id)
    _sql(db_url, "UPDATE answer SET key = 'mood', flow_version = 2 WHERE id = :i", i=pain.id)
    check = audit.verify_answers(db, settings.secret_key)
    assert [(p.answer_id, p.message.rsplit(": ", 1)[1]) for p in check.problems] == [
        (name.id, "participant"), (pain.id, "flow_version, key")]


def test_a_deleted_or_added_answer_is_found(
        converse: Converse, db: Session, db_url: str, settings: Settings) -> None:
    pid = converse("P1", PHONE, "Ana Maria", "7")
    name, pain = _answers(db)
    _sql(db_url, "DELETE FROM answer WHERE id = :i", i=name.id)
    with session_scope(db_url) as s:
        s.add(Answer(**{**pain.model_dump(exclude={"id"}), "value_json": "9",
                        "participant_id": pid}))
    check = audit.verify_answers(db, settings.secret_key)
    assert [p.message for p in check.problems] == [
        f"answer {name.id} (audit entry {_entries(db, 'answer.recorded')[0].id}) was deleted",
        f"answer {pain.id + 1} has no audit entry: it was not stored by the bot"]
    assert check.checked == 1


def test_erased_free_text_answers_are_passed_over_other_deletions_are_not(
        converse: Converse, db: Session, db_url: str, cli: Cli, settings: Settings) -> None:
    converse("P1", PHONE, "Ana Maria", "7")
    converse("P2", "+14155552672", "Bo", "2")
    assert cli("participants", "erase", "P1", "--yes").exit_code == 0
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == \
        "OK: 3 answers as recorded (1 free-text answer erased on purpose)"
    # A free-text answer of a participant who was not erased is another matter.
    (bo,) = _detached(db, select(Answer).where(Answer.value_json == '"Bo"'))
    _sql(db_url, "DELETE FROM answer WHERE id = :i", i=bo.id)
    check = audit.verify_answers(db, settings.secret_key)
    assert [p.answer_id for p in check.problems] == [bo.id]
    assert "was deleted" in check.problems[0].message


def test_a_reused_answer_id_is_checked_against_its_own_entry(
        converse: Converse, db: Session, db_url: str, cli: Cli, settings: Settings) -> None:
    # The free-text answer is the newest row; erasing it frees its id, which SQLite hands
    # to the next answer: that id then has two entries, the erased answer's and its own.
    converse("P1", PHONE, "Ana Maria")
    assert cli("participants", "erase", "P1", "--yes").exit_code == 0
    converse("P2", "+14155552672", "Bo", "2")
    check = audit.verify_answers(db, settings.secret_key)
    assert (check.problems, check.checked, check.erased) == ([], 2, 1)


def test_a_wrong_secret_key_is_named_once(converse: Converse, settings: Settings) -> None:
    converse("P1", PHONE, "Ana Maria", "7")
    wrong = replace(settings, secret_key="not-the-bot's")
    result = CliRunner().invoke(main, ["audit", "verify"], obj=wrong)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "MISMATCH at answers: none of the 2 answers matches the digest of its audit entry: "
        "SECRET_KEY is not the one the bot runs with, or every answer was changed",
        "1 problem in 4 entries and 2 answers"]
