"""Shared fixtures. Database tests run twice, on SQLite and on PostgreSQL; Redis is real.

PostgreSQL: `TEST_POSTGRES_URL` (default the local `test` database). Its schema is rebuilt
through the migrations once per run and every table is emptied before each test. Redis:
`TEST_REDIS_URL` (default db 15), flushed around each test that asks for `redis_url`.
Neither is ever skipped: a server that is down fails the tests that need it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from bot.config import Settings
from bot.store import schema
from bot.store.db import dispose_engines, get_engine, normalise_url

PG_URL = normalise_url(os.environ.get("TEST_POSTGRES_URL",
                                      "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Migrate once, then copy the file per test: same schema, a fraction of the time.
    path = tmp_path_factory.mktemp("schema") / "template.db"
    schema.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _pg_schema() -> str:
    engine = sa.create_engine(PG_URL, poolclass=NullPool, connect_args={"connect_timeout": 3})
    problem = None
    try:
        with engine.begin() as conn:
            # Drop what an earlier run left, so the migrations run from scratch every time.
            tables = conn.execute(sa.text(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = current_schema()")).scalars().all()
            if tables:
                conn.execute(sa.text(f"DROP TABLE {', '.join(tables)} CASCADE"))
    except sa.exc.OperationalError as exc:
        problem = str(exc.orig).strip()
    finally:
        engine.dispose()
    if problem is not None:  # failed outside the handler: no chained traceback
        shown = sa.make_url(PG_URL).render_as_string(hide_password=True)
        pytest.fail(f"PostgreSQL is not reachable at {shown}: {problem}\n"
                    "Start it, or point TEST_POSTGRES_URL at one.", pytrace=False)
    schema.upgrade(PG_URL)
    return PG_URL


def _empty_pg_tables(url: str) -> None:
    with get_engine(url).begin() as conn:
        # A connection a test leaked would make TRUNCATE wait forever; fail instead.
        conn.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
        tables = conn.execute(sa.text(
            "SELECT quote_ident(tablename) FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename <> 'alembic_version'"
        )).scalars().all()
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "pg"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the emptied PostgreSQL one."""
    if request.param == "sqlite":
        path = tmp_path / "bot.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("_pg_schema")
        _empty_pg_tables(url)
    yield url
    dispose_engines(close=True)


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Settings for tests. `redis_url` points at the test Redis db, but only the `redis_url`
    fixture checks and flushes it: ask for that fixture if the test uses Redis."""
    return Settings(database_url=db_url, redis_url=REDIS_URL, testing=True,
                    secret_key="test-secret-key")


@pytest.fixture
def db(settings: Settings) -> Iterator[Session]:
    """A session on the test database. On SQLite every transaction, even one that only
    read, holds the write lock (BEGIN IMMEDIATE): commit or roll back before code under
    test writes, or it waits for the busy timeout."""
    with Session(get_engine(settings.database_url), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    problem = None
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        problem = str(exc)
    if problem is not None:
        client.close()
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {problem}\n"
                    "Start it, or point TEST_REDIS_URL at one.", pytrace=False)
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()
