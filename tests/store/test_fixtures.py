"""The shared fixtures: real servers, emptied per test, and a clear failure when one is down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from sqlmodel import Session, select

from bot.config import Settings
from bot.store.models import Participant

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_starts_with_empty_tables(db: Session, attempt: int) -> None:
    assert db.exec(select(Participant)).all() == []
    db.add(Participant(code=f"P{attempt}", phone="+14155552671"))
    db.commit()
    assert db.exec(select(Participant.id)).one() == 1  # identities restart too


def test_settings_point_at_the_test_database(settings: Settings, db_url: str) -> None:
    assert settings.database_url == db_url
    assert settings.testing is True


@pytest.mark.parametrize("attempt", [1, 2])
def test_redis_db_starts_empty(redis_url: str, attempt: int) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("left-behind", attempt)
    finally:
        client.close()


def _pytest(selection: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/store/test_fixtures.py", "-k", selection],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_an_unreachable_postgresql_fails_the_pg_tests() -> None:
    run = _pytest("settings_point", TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:1/test")
    assert run.returncode == 1, run.stdout
    assert "PostgreSQL is not reachable at postgresql+psycopg://postgres@127.0.0.1:1/test" \
        in run.stdout
    assert "1 passed" in run.stdout and "1 error" in run.stdout  # SQLite still ran
    assert "skipped" not in run.stdout


def test_an_unreachable_redis_fails_the_tests_that_use_it() -> None:
    run = _pytest("redis_db_starts_empty", TEST_REDIS_URL="redis://127.0.0.1:1/15")
    assert run.returncode == 1, run.stdout
    assert "Redis is not reachable at redis://127.0.0.1:1/15" in run.stdout
    assert "2 errors" in run.stdout and "skipped" not in run.stdout
