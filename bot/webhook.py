"""The Twilio endpoints: validate -> dedupe -> engine -> effects -> TwiML.

Order of checks, and why: the size cap comes before anything reads the body; the signature
before parsing (an unsigned request learns nothing about our validation); parsing before any
database work. Each request is one transaction, so a failure stores nothing and Twilio's
retry starts clean.
"""

from __future__ import annotations

import functools
import itertools
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, g, request
from sqlmodel import Session
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER
from werkzeug.datastructures import MultiDict

from . import conversation, logs
from .config import Settings
from .flow_registry import FlowRegistry
from .participants import mask_phone
from .store.db import checkpoint, get_engine, is_sqlite, session_scope
from .store.types import utcnow
from .twilio_io import (
    EMPTY_TWIML,
    SIGNATURE_HEADER,
    Malformed,
    parse_inbound,
    parse_status,
    signature_ok,
    signed_url,
    twiml,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

bp = Blueprint("twilio", __name__)
_log = logs.get_logger("webhook")
HEALTH_TIMEOUT_S = 0.5
#: How long /healthz waits for the database: a hung one is a quick 503, not a hung check.
DATABASE_HEALTH_TIMEOUT_S = 1.0
#: SQLite: checkpoint the WAL after every this many write transactions of this process,
#: once the response is sent, instead of inside a commit while every other request queues
#: behind the write lock (bot/store/db.py keeps SQLite's own checkpoint as a backstop).
CHECKPOINT_EVERY = 100
_writes = itertools.count(1)



class _Run:
    """One run of a probe on its own thread."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.done = threading.Event()
        self.ok = False

    def go(self, probe: Callable[[], None]) -> None:
        try:
            probe()
            self.ok = True
        except Exception:  # noqa: BLE001, S110 - not ok is all a health check says
            pass
        finally:
            self.done.set()


class BoundedProbe:
    """Runs `probe` on a daemon thread and waits for it `timeout` seconds at most.

    A driver stuck on a dead socket cannot be interrupted from outside, so a hung run is
    left behind rather than waited for; until it returns, every check fails at once instead
    of leaving one more stuck thread. Checks that arrive together share one run.
    """

    def __init__(self, probe: Callable[[], None], timeout: float) -> None:
        self._probe = probe
        self._timeout = timeout
        self._lock = threading.Lock()
        self._run: _Run | None = None

    def __call__(self) -> None:
        with self._lock:
            run = self._run
            if run is None or run.done.is_set():
                run = self._run = _Run()
                threading.Thread(target=run.go, args=(self._probe,), daemon=True,
                                 name="health-probe").start()
        if not run.done.wait(max(run.started + self._timeout - time.monotonic(), 0.0)):
            raise TimeoutError(f"no answer within {self._timeout} s")
        if not run.ok:
            raise RuntimeError("the probe failed")


@dataclass
class BotState:
    settings: Settings
    registry: FlowRegistry
    _redis: redis.Redis | None = field(default=None, repr=False)
    _database_probe: BoundedProbe | None = field(default=None, repr=False)

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.settings.redis_url,
                                               socket_connect_timeout=HEALTH_TIMEOUT_S,
                                               socket_timeout=HEALTH_TIMEOUT_S)
        return self._redis

    def health(self) -> dict[str, str]:
        """"ok" or "error" per dependency; details go to nobody (they may name hosts)."""
        if self._database_probe is None:
            self._database_probe = BoundedProbe(self._database, DATABASE_HEALTH_TIMEOUT_S)
        return {"database": _check(self._database_probe), "redis": _check(self._ping)}

    def _database(self) -> None:
        # A raw connection: on SQLite it runs outside a transaction, so no write lock is taken.
        url = self.settings.database_url
        conn = get_engine(url).raw_connection()
        try:
            cur = conn.cursor()
            if not is_sqlite(url):
                # The server gives up too, and the connection goes back to the pool, rather
                # than a slow probe holding it after /healthz has answered. Rolled back with
                # the probe's transaction when the connection is returned.
                timeout_ms = int(DATABASE_HEALTH_TIMEOUT_S * 1000)
                cur.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
            cur.execute("SELECT 1")
            cur.fetchall()
            cur.close()
        finally:
            conn.close()

    def _ping(self) -> None:
        self.redis.ping()


def _check(probe: Callable[[], None]) -> str:
    try:
        probe()
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return "error"
    return "ok"


def _elapsed_ms() -> float | None:
    started = g.get("started")
    return None if started is None else round((time.perf_counter() - started) * 1000, 1)


@contextmanager
def _one_writer(url: str) -> Iterator[None]:
    """On SQLite, queue this process's write transaction behind an OS file lock.

    SQLite allows one writer; a waiting connection polls with growing sleeps (up to 100 ms),
    so under load requests queue behind sleepers, not behind work. A blocking `flock` hands
    the database to the next request the moment the previous one commits.
    PostgreSQL locks rows instead, so nothing is needed there.
    """
    if not is_sqlite(url) or fcntl is None:
        yield
        return
    path = _lock_path(url)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@functools.lru_cache(maxsize=8)
def _lock_path(url: str) -> str:
    db_path = url.split("///", 1)[-1]
    if not db_path or db_path == ":memory:":
        return os.path.join(tempfile.gettempdir(), "trialbot-sqlite.lock")
    return db_path + ".write-lock"


_T = TypeVar("_T")


def _transaction(url: str, work: Callable[[Session], _T]) -> _T:
    """`work` in one transaction, behind the SQLite writer lock; run again, once, when the
    database connection turned out to be dead. Pooled connections are not tested before
    every request (bot/store/db.py), and a transaction on a dead connection stored nothing
    (unless it died during the commit itself: then the retry finds a duplicate)."""
    for attempt in range(2):
        try:
            with _one_writer(url), session_scope(url) as db:
                result = work(db)
            if is_sqlite(url) and next(_writes) % CHECKPOINT_EVERY == 0:
                g.setdefault("after_response", []).append(functools.partial(_checkpoint, url))
            return result
        except sa.exc.DBAPIError as exc:
            if attempt or not exc.connection_invalidated:
                raise
            logs.event(_log, "database_reconnect", level=30)
    raise AssertionError("not reached")


def _checkpoint(url: str) -> None:
    try:
        checkpoint(url)
    except Exception as exc:  # noqa: BLE001 - the response went out; SQLite's backstop remains
        logs.event(_log, "checkpoint_failed", level=30, error=type(exc).__name__)


@bp.after_request
def _after_response(response: Response) -> Response:
    """Work that waits until the response has been sent (the server closes it then)."""
    for fn in g.pop("after_response", ()):
        response.call_on_close(fn)
    return response


def _state() -> BotState:
    state: BotState = current_app.extensions["trialbot"]
    return state


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/xml")


def _signed_form(state: BotState, kind: str) -> MultiDict[str, str]:
    """The form, once the size is within bounds and Twilio's signature matches."""
    length = request.content_length
    if length is None:
        # Twilio always says how long its form is; a chunked body of unknown size would be
        # cut at MAX_CONTENT_LENGTH by werkzeug rather than refused.
        logs.event(_log, f"{kind}_without_length", level=30)
        abort(400)
    if length > state.settings.max_request_bytes:
        logs.event(_log, f"{kind}_too_large", level=30, bytes=length)
        abort(400)  # malformed, like any request Twilio would never send
    form = request.form
    # Twilio signs the URL it called. PUBLIC_BASE_URL says what that was when a proxy stands
    # between (the app then sees http:// and an internal host); without it, the URL as here.
    base = state.settings.public_base_url
    url = signed_url(base, request.path, request.query_string) if base else request.url
    if not signature_ok(state.settings.twilio_auth_token, url, form,
                        request.headers.get(SIGNATURE_HEADER),
                        request.headers.get(SIGNATURE_SETTINGS_HEADER)):
        logs.event(_log, f"{kind}_bad_signature", level=30,
                   signed=SIGNATURE_HEADER in request.headers)
        abort(403)
    return form


@bp.post("/twilio/messages")
def messages() -> Response:
    state = _state()
    form = _signed_form(state, "inbound")
    try:
        inbound = parse_inbound(form)
    except Malformed as exc:
        logs.event(_log, "inbound_malformed", level=30, reason=exc.reason)
        return _xml(EMPTY_TWIML, 400)

    def handle(db: Session) -> conversation.Outcome:
        outcome = conversation.handle_inbound(db, inbound, settings=state.settings,
                                              registry=state.registry, now=utcnow())
        if outcome.result == "duplicate":
            db.rollback()
        return outcome

    outcome = _transaction(state.settings.database_url, handle)
    logs.event(_log, f"inbound_{outcome.result}", sid=inbound.sid, channel=inbound.channel,
               phone=mask_phone(inbound.phone), participant=outcome.participant_code,
               replies=len(outcome.replies), ms=_elapsed_ms())
    return _xml(twiml(outcome.replies) if outcome.replies else EMPTY_TWIML)


@bp.post("/twilio/status")
def status() -> Response:
    state = _state()
    form = _signed_form(state, "status")
    try:
        update = parse_status(form)
    except Malformed as exc:
        logs.event(_log, "status_malformed", level=30, reason=exc.reason)
        return Response(status=400)
    result = _transaction(state.settings.database_url,
                          lambda db: conversation.handle_status(db, update, now=utcnow()))
    level = 30 if result.result == "unknown_sid" else 20
    logs.event(_log, f"status_{result.result}", level=level, sid=update.sid,
               status=update.status, error_code=update.error_code,
               participant=result.participant_code, ms=_elapsed_ms())
    return Response(status=204)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    checks = _state().health()
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ok else "unavailable", **checks}, 200 if ok else 503
