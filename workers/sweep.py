"""The outbox sweep: enqueue again whatever is due and not sent. The database is the truth.

What it heals: a process that died between its commit and the enqueue; a job lost with a
worker (`kill -9`) or with Redis (`FLUSHALL`); a retry row made by a status callback; a row
whose worker died while sending ("sending" with an expired lease: sent again, marked
`possible_duplicate`). Ids with a job already waiting carry a mark in Redis and are skipped,
so sweeping often is cheap and never piles up duplicate jobs (and a duplicate job would
send nothing twice anyway: the claim decides).

Run it every few seconds: `bot worker --sweep-every 10`, `bot outbox sweep --every 10`, or
from the scheduler loop with `sweep_outbox(settings, redis, now)`.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa
from redis import Redis
from sqlmodel import SQLModel

from bot import logs, outbox
from bot.config import Settings
from bot.store.db import get_engine
from bot.store.types import utcnow

_log = logs.get_logger("sweep")

#: Rows looked at per sweep, oldest due first; the next sweep takes the rest.
SWEEP_LIMIT: Final = 20_000

_M = SQLModel.metadata.tables["message"]
_DUE = (
    sa.select(_M.c.id)
    .where(_M.c.direction == "out", _M.c.twilio_sid.is_(None),
           sa.or_(sa.and_(_M.c.status == "pending",
                          sa.or_(_M.c.due_at.is_(None), _M.c.due_at <= sa.bindparam("now"))),
                  sa.and_(_M.c.status == "sending", _M.c.claimed_at < sa.bindparam("expired"))))
    .order_by(_M.c.due_at, _M.c.id)
    .limit(sa.bindparam("limit"))
)


def due_ids(settings: Settings, now: datetime, limit: int = SWEEP_LIMIT) -> list[int]:
    expired = now - timedelta(seconds=settings.outbox_lease_seconds)
    url = settings.database_url
    # A plain read; on SQLite it still takes the write lock (BEGIN IMMEDIATE), so queue.
    with outbox.write_lock(url), get_engine(url).connect() as conn:
        ids = [int(i) for i in conn.execute(_DUE, {"now": now, "expired": expired,
                                                   "limit": limit}).scalars()]
        conn.rollback()
    return ids


def sweep_outbox(settings: Settings, redis: Redis, now: datetime | None = None) -> int:
    """Enqueue send jobs for due, unsent rows that have none; returns how many rows."""
    now = now or utcnow()
    ids = due_ids(settings, now)
    if not ids:
        return 0
    count = outbox.dispatch(redis, ids, now=now, batch_size=settings.outbox_batch_size)
    if count:
        logs.event(_log, "outbox_swept", due=len(ids), enqueued=count)
    return count


def sweep_job() -> int:
    """RQ job form of the sweep (for schedulers that enqueue it)."""
    from rq import get_current_job

    settings = Settings.from_env()
    job = get_current_job()
    redis = job.connection if job is not None else Redis.from_url(settings.redis_url)
    return sweep_outbox(settings, redis)


class SweepLoop:
    """Sweep every `every` seconds on a daemon thread (inside `bot worker`)."""

    def __init__(self, settings: Settings, redis: Redis, every: float) -> None:
        self.settings, self.redis, self.every = settings, redis, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-sweep", daemon=True)

    def start(self) -> SweepLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sweep_outbox(self.settings, self.redis)
            except Exception as exc:  # noqa: BLE001 - try again next round; say so
                logs.event(_log, "outbox_sweep_failed", level=40, error=type(exc).__name__)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 5)
