"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from bot import audit
from bot.store import schema
from bot.store.db import dispose_engines, get_engine, session_scope
from bot.store.models import AuditHead


def test_models_and_migrations_agree(db_url: str) -> None:
    # A model change without a migration fails here: run `bot db revision -m "..."`.
    assert schema.differences(db_url) == []


def test_upgrade_at_head_does_nothing(db_url: str) -> None:
    assert schema.current(db_url) == (schema.head(),)
    assert schema.upgrade(db_url) is False


def test_downgrade_to_nothing_and_back(db_url: str) -> None:
    dispose_engines(close=True)  # the app's pooled connections would block DROP on PostgreSQL
    try:
        schema.downgrade(db_url, "base")
        assert schema.current(db_url) == ()
        tables = set(sa.inspect(get_engine(db_url)).get_table_names())
        assert tables <= {"alembic_version"}
    finally:
        dispose_engines(close=True)
        schema.upgrade(db_url)
    assert schema.differences(db_url) == []


def test_audit_head_is_filled_in_from_an_existing_chain(db_url: str) -> None:
    with session_scope(db_url) as s:
        for n in range(3):
            audit.record(s, actor="system:test", action="test", entity="thing", entity_id=n)
    dispose_engines(close=True)
    try:
        schema.downgrade(db_url, "0001")
        schema.upgrade(db_url)
    finally:
        dispose_engines(close=True)
    with Session(get_engine(db_url)) as s:
        head = s.exec(select(AuditHead)).one()
        assert head.entries == 3
        assert audit.verify(s) == []


def test_upgrade_a_new_file_from_any_directory(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'deeper' / 'new.db'}"
    assert schema.upgrade(url) is True
    assert schema.current(url) == (schema.head(),)


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    # Processes, not threads: alembic keeps its running context in module globals.
    url = f"sqlite:///{tmp_path / 'race.db'}"
    code = "import sys; from bot.store import schema; schema.upgrade(sys.argv[1])"
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", code, url], cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert schema.current(url) == (schema.head(),)
    assert schema.differences(url) == []
