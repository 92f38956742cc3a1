"""Per-participant audit streams: separate chains, no waiting across participants, and
tampering across streams still found; the one chain from before streams stays valid."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from click.testing import Result
from sqlmodel import Session, select

from bot import audit, participants
from bot.store import schema
from bot.store.db import dispose_engines, get_engine, session_scope
from bot.store.models import AuditEntry, AuditHead
from bot.store.types import UTCDateTime

Cli = Callable[..., Result]


def _enrol(url: str, n: int) -> list[int]:
    ids = []
    with session_scope(url) as s:
        for i in range(n):
            p = participants.add(s, actor="staff:test", phone=f"+1415555{2670 + i}",
                                 code=f"P{i}")
            assert p.id is not None
            ids.append(p.id)
    return ids


def _answer(url: str, pid: int, n: int = 1) -> None:
    for i in range(n):
        with session_scope(url) as s:
            audit.record(s, actor=f"participant:P{pid}", action="answer.recorded",
                         entity="answer", entity_id=i, new={"v": i},
                         stream=audit.participant_stream(pid))


def _sql(url: str, statement: str, **params: object) -> None:
    with get_engine(url).begin() as conn:
        conn.execute(sa.text(statement), params)


def _breaks(url: str) -> list[audit.Break]:
    with Session(get_engine(url)) as s:
        return audit.verify(s)


def _entries(url: str, stream: str) -> list[AuditEntry]:
    with Session(get_engine(url)) as s:
        return list(s.exec(select(AuditEntry).where(AuditEntry.stream == stream)
                           .order_by(AuditEntry.id)).all())  # type: ignore[arg-type]


def test_a_participant_stream_starts_from_the_system_chain(db_url: str, cli: Cli) -> None:
    first, second = _enrol(db_url, 2)
    _answer(db_url, first, 2)
    mine = _entries(db_url, audit.participant_stream(first))
    assert [e.action for e in mine] == ["participant.add", "answer.recorded", "answer.recorded"]
    theirs = _entries(db_url, audit.participant_stream(second))
    # Each stream's first entry is also the next link of the system chain.
    assert mine[0].prev_hash == audit.GENESIS
    assert theirs[0].prev_hash == mine[0].hash
    assert mine[1].prev_hash == mine[0].hash
    assert _entries(db_url, audit.SYSTEM) == []
    with Session(get_engine(db_url)) as s:
        heads = {h.stream: (h.hash, h.entries) for h in s.exec(select(AuditHead))}
    assert heads == {"system": (theirs[0].hash, 2), f"participant:{first}": (mine[2].hash, 3),
                     f"participant:{second}": (theirs[0].hash, 1)}
    assert _breaks(db_url) == []
    result = cli("audit", "verify")
    assert result.exit_code == 0
    assert result.output.startswith("OK: 4 entries, chain intact (3 streams, fingerprint ")


def test_the_fingerprint_changes_with_every_entry(db_url: str) -> None:
    [pid] = _enrol(db_url, 1)
    with Session(get_engine(db_url)) as s:
        before = audit.head(s)
    _answer(db_url, pid)
    with Session(get_engine(db_url)) as s:
        after = audit.head(s)
    assert before is not None and after is not None
    assert (before.streams, after.streams) == (2, 2)
    assert before.hash != after.hash


def test_a_stream_deleted_whole_is_found(db_url: str) -> None:
    a, b = _enrol(db_url, 2)
    _answer(db_url, b, 2)
    with session_scope(db_url) as s:
        later = audit.record(s, actor="system:test", action="x", entity="thing", entity_id=1)
    _sql(db_url, "DELETE FROM audit_entry WHERE stream = :s", s=f"participant:{b}")
    _sql(db_url, "DELETE FROM audit_head WHERE stream = :s", s=f"participant:{b}")
    breaks = _breaks(db_url)
    assert [x.entry_id for x in breaks] == [later.id, None]
    assert f"does not follow entry {_entries(db_url, f'participant:{a}')[0].id} in stream " \
        "system" in breaks[0].message
    assert "stream system: 2 entries but the head counts 3" in breaks[1].message


def test_a_deleted_newest_entry_of_a_stream_is_found(db_url: str) -> None:
    [pid] = _enrol(db_url, 1)
    _answer(db_url, pid, 3)
    newest = _entries(db_url, f"participant:{pid}")[-1]
    _sql(db_url, "DELETE FROM audit_entry WHERE id = :i", i=newest.id)
    messages = [x.message for x in _breaks(db_url)]
    assert any(f"stream participant:{pid}" in m and "newer entries were deleted" in m
               for m in messages)


def test_an_entry_moved_to_another_stream_is_found(db_url: str) -> None:
    a, b = _enrol(db_url, 2)
    _answer(db_url, a, 2)
    moved = _entries(db_url, f"participant:{a}")[1]
    _sql(db_url, "UPDATE audit_entry SET stream = :s WHERE id = :i", s=f"participant:{b}",
         i=moved.id)
    assert moved.id in [x.entry_id for x in _breaks(db_url)]


def test_an_inserted_stream_is_found(db_url: str) -> None:
    _enrol(db_url, 1)
    with Session(get_engine(db_url)) as s:
        system = s.get(AuditHead, audit.SYSTEM)
        assert system is not None
        prev = system.hash
    # Chained onto the system head, as the first entry of a stream is; the head itself is
    # left alone (rewriting heads is beyond what the database can show).
    at = datetime(2026, 1, 1, tzinfo=UTC)
    digest = audit._digest(prev, at, "staff:mallory", "answer.recorded", "answer", "1", None,
                           None)
    with session_scope(db_url) as s:
        s.add(AuditEntry(stream="participant:99", at=at, actor="staff:mallory",
                         action="answer.recorded", entity="answer", entity_id="1",
                         prev_hash=prev, hash=digest))
        s.add(AuditHead(stream="participant:99", hash=digest, entries=1, updated_at=at))
    messages = [x.message for x in _breaks(db_url)]
    assert any("newest entry of stream system" in m for m in messages)
    assert any("stream system: 2 entries but the head counts 1" in m for m in messages)


def test_concurrent_writers_on_many_streams_form_valid_chains(db_url: str) -> None:
    ids = _enrol(db_url, 3)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                # Every thread writes to every stream, and opens new ones at the same time.
                pid = ids[(n + i) % len(ids)]
                _answer(db_url, pid)
                with session_scope(db_url) as s:
                    audit.record(s, actor="system:test", action="x", entity="participant",
                                 entity_id=1000 + i % 5)
        except BaseException as exc:  # a thread's exception would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _breaks(db_url) == []
    with Session(get_engine(db_url)) as s:
        heads = {h.stream: h.entries for h in s.exec(select(AuditHead))}
    assert sum(heads[f"participant:{pid}"] for pid in ids) == 3 + 60
    assert sum(heads[f"participant:{1000 + k}"] for k in range(5)) == 60
    assert heads["system"] == 8  # the first entry of each stream


def test_participants_do_not_wait_for_each_other(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time whatever the chains")
    a, b = _enrol(db_url, 2)
    with session_scope(db_url) as held:
        audit.record(held, actor="participant:P0", action="answer.recorded", entity="answer",
                     entity_id=1, stream=audit.participant_stream(a))
        # While that transaction is open, b's stream is free and a's is not.
        with Session(get_engine(db_url)) as other:
            other.connection().execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
            audit.record(other, actor="participant:P1", action="answer.recorded",
                         entity="answer", entity_id=2, stream=audit.participant_stream(b))
            other.commit()
        with Session(get_engine(db_url)) as other:
            other.connection().execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                audit.record(other, actor="participant:P0", action="answer.recorded",
                             entity="answer", entity_id=3, stream=audit.participant_stream(a))
            other.rollback()
    assert _breaks(db_url) == []


# ---- the migration --------------------------------------------------------------------------


def _old_chain(url: str, n: int) -> str:
    """`n` entries written the way the one-chain schema (0004) wrote them; the head hash."""
    prev = audit.GENESIS
    insert = sa.text(
        "INSERT INTO audit_entry (at, actor, action, entity, entity_id, new_json, prev_hash, "
        "hash) VALUES (:at, 'staff:test', 'x', :entity, :eid, :new, :prev, :hash)"
    ).bindparams(sa.bindparam("at", type_=UTCDateTime()))
    with get_engine(url).begin() as conn:
        for i in range(n):
            at = datetime(2026, 1, 1, 12, i, tzinfo=UTC)
            entity = "participant" if i % 2 else "thing"
            digest = audit._digest(prev, at, "staff:test", "x", entity, str(i), None, '{"v":1}')
            conn.execute(insert, {"at": at, "entity": entity, "eid": str(i), "new": '{"v":1}',
                                  "prev": prev, "hash": digest})
            prev = digest
        conn.execute(sa.text("INSERT INTO audit_head (id, hash, entries, updated_at) "
                             "VALUES (1, :h, :n, :at)")
                     .bindparams(sa.bindparam("at", type_=UTCDateTime())),
                     {"h": prev, "n": n, "at": datetime.now(UTC)})
    return prev


def test_the_one_chain_from_before_becomes_the_system_stream(db_url: str) -> None:
    dispose_engines(close=True)
    try:
        schema.downgrade(db_url, "0004")
        head_hash = _old_chain(db_url, 4)
        schema.upgrade(db_url)
    finally:
        dispose_engines(close=True)
        schema.upgrade(db_url)
    with Session(get_engine(db_url)) as s:
        assert audit.verify(s) == []
        assert [(h.stream, h.hash, h.entries) for h in s.exec(select(AuditHead))] == [
            ("system", head_hash, 4)]
    # New entries go on from there: a participant's stream starts from the old chain.
    [pid] = _enrol(db_url, 1)
    assert _breaks(db_url) == []
    assert len(_entries(db_url, audit.SYSTEM)) == 4
    assert _entries(db_url, audit.participant_stream(pid))[0].prev_hash == head_hash


def test_downgrading_keeps_a_system_only_chain_and_refuses_participant_streams(
        db_url: str) -> None:
    with session_scope(db_url) as s:
        audit.record(s, actor="system:test", action="x", entity="thing", entity_id=1)
    dispose_engines(close=True)
    try:
        schema.downgrade(db_url, "0004")
        with get_engine(db_url).connect() as conn:
            assert conn.execute(sa.text("SELECT id, entries FROM audit_head")).all() == [(1, 1)]
    finally:
        dispose_engines(close=True)
        schema.upgrade(db_url)
    _enrol(db_url, 1)
    dispose_engines(close=True)
    try:
        with pytest.raises(RuntimeError, match="participant streams"):
            schema.downgrade(db_url, "0004")
    finally:
        dispose_engines(close=True)
    assert schema.current(db_url) == (schema.head(),)
    assert _breaks(db_url) == []


def test_entries_with_any_text_hash_alike_on_both_databases(db_url: str) -> None:
    # On PostgreSQL the server computes the hash; it must be the one `verify` computes.
    [pid] = _enrol(db_url, 1)
    with session_scope(db_url) as s:
        done = audit.record(s, actor="participant:P0", action="answer.recorded",
                            entity="answer", entity_id=7,
                            new={"text": "sí, 7 👍\nnon\u00a0merci", "n": [1, 2.5, None]},
                            stream=audit.participant_stream(pid))
    with Session(get_engine(db_url)) as s:
        entry = s.get(AuditEntry, done.id)
        assert entry is not None
        assert entry.hash == done.hash == audit._digest(
            entry.prev_hash, entry.at, entry.actor, entry.action, entry.entity,
            entry.entity_id, entry.old_json, entry.new_json)
    assert _breaks(db_url) == []
