"""Database engines: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL.

Engines are made per process and per URL; worker processes that fork must call
`dispose_engines()` after the fork so no connection is shared between processes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlmodel import Session

from .types import UTCDateTime

SQLITE_BUSY_TIMEOUT_MS = 10_000
#: SQLite checkpoints the WAL itself inside the commit that grows it past this many pages,
#: holding the write lock meanwhile (about 20 ms per 1,000 pages here). The webhook
#: checkpoints after its responses instead (`checkpoint`); this is the backstop, for
#: processes that never do.
SQLITE_AUTOCHECKPOINT_PAGES = 4_000
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
    cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock at BEGIN so two writers queue instead of failing mid-transaction.
    _BEGIN_IMMEDIATE.run(conn, ())


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


def checkpoint(url: str) -> None:
    """SQLite: copy what the WAL holds into the database file, outside any transaction and
    without waiting for readers or writers (PASSIVE), so nobody queues behind it."""
    if not is_sqlite(url):
        return
    conn = get_engine(url).raw_connection()
    try:
        cur = conn.cursor()
        cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
        cur.fetchall()
        cur.close()
    finally:
        conn.close()


class DriverSQL:
    """One statement run on the driver's own cursor, in a SQLAlchemy connection's transaction.

    For the webhook's hot path: SQLAlchemy's work per statement (compiled-cache lookup, bind
    and result processing, the result object) costs about three times the driver's own.
    Written with `?` placeholders; psycopg's `%s` form is derived, or given as `postgresql`
    where the SQL differs. Datetimes are bound as `UTCDateTime` binds them, so rows read
    through the models agree; results are the driver's plain values (SQLite gives booleans
    as 0/1 and times as text), so select nothing that needs converting. Driver errors come
    out wrapped, as from `Connection.execute`.
    """

    __slots__ = ("_postgresql", "_sqlite")

    def __init__(self, sql: str, postgresql: str | None = None) -> None:
        self._sqlite = sql
        self._postgresql = postgresql or sql.replace("?", "%s")

    def first(self, conn: Connection, params: Sequence[Any]) -> Any:
        """The first row (a tuple), or None."""
        return self._execute(conn, params, many=False, fetch=True)

    def run(self, conn: Connection, params: Sequence[Any]) -> None:
        """Without reading a result: inside `pipelined` it does not wait for the server."""
        self._execute(conn, params, many=False)

    def many(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        # One row (the usual reply) as a plain execute: psycopg's executemany sets up a
        # pipeline, which costs more than the statement.
        if len(rows) == 1:
            self._execute(conn, rows[0], many=False)
        elif rows:
            self._execute(conn, rows, many=True)

    def _execute(self, conn: Connection, params: Any, many: bool, fetch: bool = False) -> Any:
        dialect = conn.dialect
        sql = self._postgresql if dialect.name == "postgresql" else self._sqlite
        bind = _time_binder(dialect)
        params = [_bound(row, bind) for row in params] if many else _bound(params, bind)
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        cursor = dbapi_conn.cursor()
        try:
            if many:
                cursor.executemany(sql, params)
                return None
            cursor.execute(sql, params)
            return cursor.fetchone() if fetch else None
        except dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(
                sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect,
                connection_invalidated=dialect.is_disconnect(exc, dbapi_conn, cursor),
            ) from exc
        finally:
            cursor.close()


_BEGIN_IMMEDIATE = DriverSQL("BEGIN IMMEDIATE")


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, statements inside are sent without waiting for each one's answer
    (psycopg's pipeline mode) until one is read or the block ends: a run of writes costs
    one round trip instead of one each. A failure surfaces at that point and fails the
    transaction as a whole, as it would have anyway. Elsewhere, nothing changes."""
    if conn.dialect.name != "postgresql":
        yield
        return
    dbapi_conn: Any = conn.connection.dbapi_connection
    with dbapi_conn.pipeline():
        yield


def _bound(params: Sequence[Any], bind: Callable[[datetime], Any]) -> list[Any]:
    return [bind(v) if type(v) is datetime else v for v in params]


@functools.cache
def _time_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    processor = UTCDateTime().bind_processor(dialect)
    assert processor is not None
    return processor


class DriverInsert:
    """INSERT of dict rows into one of the models' tables, through `DriverSQL`.

    The statement is made per set of keys the rows carry; columns the rows leave out get
    their model's default, as a Core insert would give them. `conflict`: the unique columns
    for ON CONFLICT DO NOTHING; `returning`: a column to return (`first` gives None for a
    row the constraint turned away).
    """

    __slots__ = ("_conflict", "_returning", "_statements", "_table")

    def __init__(self, table: str, *, conflict: tuple[str, ...] = (),
                 returning: str | None = None) -> None:
        self._table, self._conflict, self._returning = table, conflict, returning
        self._statements: dict[tuple[str, ...], tuple[DriverSQL, tuple[Any, ...]]] = {}

    def first(self, conn: Connection, row: Mapping[str, Any]) -> Any:
        sql, defaults = self._statement(tuple(row))
        return sql.first(conn, (*row.values(), *defaults))

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows made alike (the same keys in the same order), as executemany needs."""
        if not rows:
            return
        keys = tuple(rows[0])
        if any(tuple(row) != keys for row in rows):
            raise ValueError("rows with different keys")
        sql, defaults = self._statement(keys)
        sql.many(conn, [(*row.values(), *defaults) for row in rows])

    def _statement(self, keys: tuple[str, ...]) -> tuple[DriverSQL, tuple[Any, ...]]:
        found = self._statements.get(keys)
        if found is None:
            from sqlmodel import SQLModel

            table = SQLModel.metadata.tables[self._table]
            columns, defaults = list(keys), []
            for column in table.columns:
                if column.name in keys or column.default is None:
                    continue
                if not column.default.is_scalar:
                    raise ValueError(f"{self._table}.{column.name}: give it in every row")
                columns.append(column.name)
                defaults.append(column.default.arg)  # type: ignore[attr-defined]
            sql = (f"INSERT INTO {self._table} ({', '.join(columns)}) "  # noqa: S608 - names from the models
                   f"VALUES ({', '.join('?' * len(columns))})")
            if self._conflict:
                sql += f" ON CONFLICT ({', '.join(self._conflict)}) DO NOTHING"
            if self._returning:
                sql += f" RETURNING {self._returning}"
            found = self._statements[keys] = (DriverSQL(sql), tuple(defaults))
        return found
