"""RQ job: fire one nudge. The job carries the nudge id only; the database has the rest.

Idempotent: firing happens in one transaction that first checks the nudge is still
pending, so a duplicate job (two schedulers, a re-enqueue after a Redis flush) does nothing.
A job that dies half-way rolls back and the scheduler enqueues it again.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis

from bot import logs, nudges, outbox
from bot.config import Settings
from bot.flow_registry import FlowRegistry
from bot.store.db import dispose_engines, session_scope
from bot.store.types import utcnow

QUEUE = "nudges"
JOB = "workers.nudge.fire_nudge"
#: Seconds a fire may take before RQ kills it (it rolls back and is enqueued again).
JOB_TIMEOUT = 120

_log = logs.get_logger("nudge")


@dataclass
class NudgeContext:
    """What a worker process keeps between jobs: settings, flows, a Redis connection."""

    settings: Settings
    redis: Redis
    registry: FlowRegistry
    pid: int = field(default_factory=os.getpid)

    @classmethod
    def create(cls, settings: Settings, redis: Redis | None = None) -> NudgeContext:
        return cls(settings=settings, redis=redis or Redis.from_url(settings.redis_url),
                   registry=FlowRegistry(settings.flows_dir))


_context: NudgeContext | None = None
_lock = threading.Lock()


def context() -> NudgeContext:
    """This process's context, made on first use (and again after a fork)."""
    global _context
    with _lock:
        if _context is None or _context.pid != os.getpid():
            if _context is not None:
                dispose_engines()  # the parent's connections are not ours to use
            from rq import get_current_job

            job = get_current_job()
            settings = Settings.from_env()
            _context = NudgeContext.create(settings, job.connection if job else None)
        return _context


def set_context(ctx: NudgeContext | None) -> None:
    """Use `ctx` in this process (the scheduler, tests)."""
    global _context
    with _lock:
        _context = ctx


def fire(ctx: NudgeContext, nudge_id: int, now: datetime | None = None) -> nudges.Fired:
    """Fire a nudge in its own transaction, then hand its messages to the outbox."""
    now = now or utcnow()
    url = ctx.settings.database_url
    with outbox.write_lock(url), session_scope(url) as db:
        fired = nudges.fire(db, nudge_id, settings=ctx.settings, registry=ctx.registry,
                            now=now)
    if fired.messages:
        try:
            outbox.dispatch(ctx.redis, fired.messages, now=now,
                            batch_size=ctx.settings.outbox_batch_size)
        except Exception as exc:  # noqa: BLE001 - committed rows are safe; the sweep sends them
            logs.event(_log, "nudge_dispatch_failed", level=30, nudge_id=nudge_id,
                       messages=len(fired.messages), error=type(exc).__name__)
    return fired


def fire_nudge(nudge_id: int) -> str:
    """RQ job: fire nudge `nudge_id`; returns what happened (done, stale, postponed, ...)."""
    return fire(context(), int(nudge_id)).outcome
