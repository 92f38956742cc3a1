"""The audit chains show edited, deleted and inserted entries, on both databases.

`_write` records "thing" entries, which go to the `system` stream; the participant streams
are tested in test_audit_streams.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlalchemy as sa
from click.testing import Result
from sqlmodel import Session

from bot import audit
from bot.store.db import get_engine, session_scope
from bot.store.models import AuditEntry, AuditHead

Cli = Callable[..., Result]


def _write(url: str, n: int, actor: str = "system:test") -> None:
    for i in range(n):
        with session_scope(url) as s:
            audit.record(s, actor=actor, action="thing.changed", entity="thing", entity_id=i,
                         old={"v": i}, new={"v": i + 1})


def _sql(url: str, statement: str, **params: object) -> None:
    with get_engine(url).begin() as conn:
        conn.execute(sa.text(statement), params)


def _breaks(url: str) -> list[audit.Break]:
    with Session(get_engine(url)) as s:
        return audit.verify(s)


def test_an_intact_chain_verifies(db_url: str, cli: Cli) -> None:
    _write(db_url, 5)
    assert _breaks(db_url) == []
    result = cli("audit", "verify")
    assert result.exit_code == 0
    assert result.output.startswith("OK: 5 entries, chain intact (1 stream, fingerprint ")


def test_an_empty_chain_verifies(db_url: str, cli: Cli) -> None:
    result = cli("audit", "verify")
    assert (result.exit_code, result.output) == (0, "OK: 0 entries, chain intact\n")


def test_an_edited_entry_is_found(db_url: str, cli: Cli) -> None:
    _write(db_url, 5)
    _sql(db_url, "UPDATE audit_entry SET new_json = :v WHERE id = 3", v='{"v":99}')
    assert [b.entry_id for b in _breaks(db_url)] == [3]
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at entry 3: entry 3 was edited after it was written" in result.output


def test_an_entry_edited_with_its_hash_recomputed_breaks_the_next(db_url: str) -> None:
    _write(db_url, 3)
    with session_scope(db_url) as s:
        e = s.get(AuditEntry, 2)
        assert e is not None
        e.new_json = '{"v":99}'
        e.hash = audit._digest(e.prev_hash, e.at, e.actor, e.action, e.entity, e.entity_id,
                               e.old_json, e.new_json)
    assert [b.entry_id for b in _breaks(db_url)] == [3]


def test_a_deleted_middle_entry_is_found(db_url: str, cli: Cli) -> None:
    _write(db_url, 5)
    _sql(db_url, "DELETE FROM audit_entry WHERE id = 3")
    breaks = _breaks(db_url)
    assert [b.entry_id for b in breaks] == [4, None]  # 4 no longer follows 2; count is off
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert "entry 4 does not follow entry 2 in stream system" in result.output
    assert "stream system: 4 entries but the head counts 5" in result.output


def test_a_deleted_newest_entry_is_found(db_url: str, cli: Cli) -> None:
    _write(db_url, 5)
    _sql(db_url, "DELETE FROM audit_entry WHERE id = 5")
    messages = [b.message for b in _breaks(db_url)]
    assert any("newer entries were deleted" in m for m in messages)
    assert cli("audit", "verify").exit_code == 1


def test_a_deleted_tail_stays_visible_after_new_entries(db_url: str) -> None:
    _write(db_url, 5)
    _sql(db_url, "DELETE FROM audit_entry WHERE id >= 4")
    _write(db_url, 2)
    # The first new entry chains onto the deleted entry 5 (SQLite even reuses id 4 for it).
    first_new = 4 if db_url.startswith("sqlite") else 6
    assert first_new in [b.entry_id for b in _breaks(db_url)]


def test_a_deleted_head_is_found(db_url: str) -> None:
    _write(db_url, 2)
    _sql(db_url, "DELETE FROM audit_head")
    assert [b.message for b in _breaks(db_url)] == ["the audit head of stream system is missing"]


def test_an_inserted_entry_is_found(db_url: str) -> None:
    _write(db_url, 2)
    with session_scope(db_url) as s:
        s.add(AuditEntry(actor="staff:mallory", action="x", entity="thing", entity_id="1",
                               prev_hash="f" * 64, hash="e" * 64))
    assert _breaks(db_url) != []


def test_concurrent_writers_form_one_chain(db_url: str) -> None:
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            _write(db_url, 50, actor=f"system:{name}")
        except BaseException as exc:  # a thread's exception would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _breaks(db_url) == []
    with Session(get_engine(db_url)) as s:
        head = s.get(AuditHead, audit.SYSTEM)
        assert head is not None and head.entries == 100


def test_list_shows_the_newest_entries_about_a_participant(db_url: str, cli: Cli) -> None:
    assert cli("participants", "add", "--phone", "+14155552671", "--code", "P1",
               "--actor", "ana").exit_code == 0
    assert cli("participants", "add", "--phone", "+14155552672", "--code", "P2").exit_code == 0
    _write(db_url, 3)
    result = cli("audit", "list", "--participant", "P1")
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert "staff:ana  participant.add  participant:1" in lines[0]
    assert "+14*******71" in lines[0] and "+14155552671" not in lines[0]
    lines = cli("audit", "list", "--limit", "2").output.splitlines()
    assert [line.split()[0] for line in lines] == ["4", "5"]
    result = cli("audit", "list", "--participant", "nobody")
    assert result.exit_code == 1
