"""Database engines: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL.

Engines are made per process and per URL; worker processes that fork must call
`dispose_engines()` after the fork so no connection is shared between processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 10_000
#: A pooled PostgreSQL connection idle for longer than this is tested before it is used.
PING_AFTER_IDLE_S = 5.0
_engines: dict[str, Engine] = {}


def normalise_url(url: str) -> str:
    """`postgres://` and `postgresql://` use psycopg 3, the driver we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock at BEGIN so two writers queue instead of failing mid-transaction.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _note_idle(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(engine: Engine) -> Any:
    """Like `pool_pre_ping`, but only for connections that sat idle: a busy process reuses
    its connections within milliseconds, and a `SELECT 1` before every transaction was one
    round trip in eight on the webhook. A connection that dies between two busy requests
    fails its request with a disconnect error, which renews the whole pool (and the webhook
    retries that request once)."""
    dialect = engine.dialect

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return  # new, or back in the pool a moment ago
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_conn, None):
                raise sa.exc.DisconnectionError() from exc  # the pool connects anew
            raise

    return checkout


def get_engine(url: str) -> Engine:
    url = normalise_url(url)
    engine = _engines.get(url)
    if engine is not None:
        return engine
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False,
                                                     "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                     "isolation_level": None})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = sa.create_engine(url, pool_size=5, max_overflow=10)
        sa.event.listen(engine, "checkin", _note_idle)
        sa.event.listen(engine, "checkout", _ping_if_idle(engine))
    _engines[url] = engine
    return engine


def dispose_engines(close: bool = False) -> None:
    """Forget every engine. After a fork keep `close=False`: the parent still owns those
    connections. Tests and clean shutdowns pass `close=True` to really close them."""
    for engine in _engines.values():
        engine.dispose(close=close)
    _engines.clear()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session committed on success and rolled back on error."""
    with Session(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def is_sqlite(url: str) -> bool:
    return normalise_url(url).startswith("sqlite")
