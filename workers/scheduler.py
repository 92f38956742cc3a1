"""The scheduler loop (`bot scheduler`): plan nudges, enqueue the due ones, sweep the outbox.

Every `interval` seconds (15 by default):

1. every `plan_every` (10 minutes): plan check-ins and visit reminders 36 hours ahead
   (`nudges.plan_all`: idempotent, one transaction per page of participants);
2. every due pending nudge without a job in Redis gets one on the `nudges` queue: job id
   `nudge_<id>_<due>` (from `bot.schedule.job_id`), carrying the id only;
3. the outbox sweep enqueues due messages that have no job (`workers.sweep.sweep_outbox`);
4. the escalation check (`bot.escalation.check_escalations`): waiting escalations are paged
   as soon as they can be (a routine one when business hours begin, an unrouted one when
   someone comes on call), unacknowledged alerts climb, due email alerts go out;
5. every few hours, finished nudges older than 30 days are deleted.

Why a database-polling loop and not RQ's `enqueue_at`: the database is the truth, so the
loop survives a Redis flush (the next tick finds the nudges still pending and enqueues them
again), times stay participant-local (RQ's cron is UTC), and moving or cancelling a nudge
is one UPDATE. Two schedulers running by mistake are harmless: planning is idempotent and
a nudge fires once whatever the number of jobs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job

from bot import escalation, logs, nudges, outbox
from bot.config import Settings
from bot.schedule import job_id
from bot.store.db import session_scope
from bot.store.types import utcnow

from . import nudge as nudge_job
from .escalate import summary as escalation_summary
from .sweep import sweep_outbox

_log = logs.get_logger("scheduler")

INTERVAL_S = 15.0
PLAN_EVERY = timedelta(minutes=10)
PRUNE_EVERY = timedelta(hours=6)
#: Due nudges looked at per tick, oldest first; the next tick takes the rest.
ENQUEUE_LIMIT = 20_000
#: A failed job (the database was down, say) stays in RQ's failed registry this long; then
#: the next tick, finding the nudge still pending, enqueues it again. That is the retry: no
#: RQ `Retry`, which would need RQ's scheduler and park the job where this loop cannot see
#: it. Errors that retrying cannot fix are recorded on the nudge (status `failed`) by the
#: job itself and never come back here.
FAILURE_TTL_S = 300


def nudge_job_id(nudge_id: int, due_at: datetime) -> str:
    """One job per nudge and due time: a postponed nudge gets a new job, a duplicate not."""
    return job_id("nudge", nudge_id, due_at.strftime("%Y%m%dT%H%M%SZ"))


@dataclass
class Tick:
    """What one pass of the loop did, for the log and for tests."""

    planned: nudges.PlanCounts | None = None
    due: int = 0
    enqueued: int = 0
    swept: int = 0
    pruned: int = 0
    escalations: escalation.CheckResult | None = None
    errors: list[str] = field(default_factory=list)


def enqueue_due(settings: Settings, redis: Redis, now: datetime,
                limit: int = ENQUEUE_LIMIT, queue_name: str = nudge_job.QUEUE) -> tuple[int, int]:
    """Give every due pending nudge that has no job one; returns (due, enqueued)."""
    url = settings.database_url
    with outbox.write_lock(url), session_scope(url) as db:
        due = nudges.due_nudges(db, now, limit)
    if not due:
        return 0, 0
    ids = [(nid, nudge_job_id(nid, at)) for nid, at in due]
    pipe = redis.pipeline(transaction=False)
    for _nid, jid in ids:
        pipe.exists(Job.key_for(jid))
    missing = [(nid, jid) for (nid, jid), found in zip(ids, pipe.execute(), strict=True)
               if not found]
    if not missing:
        return len(due), 0
    queue = Queue(queue_name, connection=redis)
    pipe = redis.pipeline()
    queue.enqueue_many([
        Queue.prepare_data(nudge_job.JOB, args=(nid,), job_id=jid, timeout=nudge_job.JOB_TIMEOUT,
                           result_ttl=0, failure_ttl=FAILURE_TTL_S, description=f"nudge {nid}")
        for nid, jid in missing], pipeline=pipe)
    pipe.execute()
    with outbox.write_lock(url), session_scope(url) as db:
        nudges.mark_claimed(db, [nid for nid, _jid in missing], now)
    return len(due), len(missing)


class Scheduler:
    """The loop. `tick(now)` does one pass; `run()` ticks until stopped."""

    def __init__(self, settings: Settings, redis: Redis, *, interval: float = INTERVAL_S,
                 plan_every: timedelta = PLAN_EVERY, prune_every: timedelta = PRUNE_EVERY,
                 sweep: bool = True, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.redis = redis
        self.interval = interval
        self.plan_every = plan_every
        self.prune_every = prune_every
        self.sweep = sweep
        self.clock = clock
        self._planned_at: datetime | None = None
        self._pruned_at: datetime | None = None
        self._stop = threading.Event()

    def _step(self, tick: Tick, name: str, fn: Callable[[], Any]) -> Any:
        # One failing step (Redis down, a locked database) must not stop the others.
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - logged; the next tick tries again
            tick.errors.append(name)
            logs.event(_log, "scheduler_step_failed", level=40, step=name,
                       error=type(exc).__name__)
            return None

    def tick(self, now: datetime | None = None) -> Tick:
        now = now or self.clock()
        tick = Tick()
        url = self.settings.database_url
        if self._planned_at is None or now - self._planned_at >= self.plan_every:
            study = nudges.load_study_schedule(self.settings.flows_dir)
            tick.planned = self._step(tick, "plan", lambda: nudges.plan_all(url, now, study))
            if tick.planned is not None:
                self._planned_at = now
        counts = self._step(tick, "enqueue", lambda: enqueue_due(self.settings, self.redis, now))
        if counts is not None:
            tick.due, tick.enqueued = counts
        if self.sweep:
            tick.swept = self._step(tick, "sweep",
                                    lambda: sweep_outbox(self.settings, self.redis, now)) or 0
        # Waiting escalations are paged and unacknowledged alerts climb from the same loop,
        # so a deployment that runs the scheduler needs nothing else for escalations. Every
        # tick retries the unrouted ones: coverage that begins is used within one interval.
        tick.escalations = self._step(
            tick, "escalations", lambda: escalation.check_escalations(self.settings, now))
        if tick.escalations is not None:
            counts = escalation_summary(tick.escalations)
            if any(counts.values()):
                logs.event(_log, "escalations_checked", **counts)
        if self._pruned_at is None or now - self._pruned_at >= self.prune_every:
            tick.pruned = self._step(tick, "prune", lambda: self._prune(now)) or 0
            self._pruned_at = now
        if tick.planned is not None or tick.enqueued or tick.swept or tick.pruned:
            planned = tick.planned
            logs.event(_log, "scheduler_tick", due=tick.due, enqueued=tick.enqueued,
                       swept=tick.swept, pruned=tick.pruned,
                       planned_added=planned.added if planned else None,
                       planned_moved=planned.moved if planned else None,
                       planned_revived=planned.revived if planned else None)
        return tick

    def _prune(self, now: datetime) -> int:
        url = self.settings.database_url
        with outbox.write_lock(url), session_scope(url) as db:
            return nudges.prune(db, now)

    def run(self) -> None:
        """Tick every `interval` seconds until `stop()`."""
        self.settings.require_live("The scheduler")
        logs.event(_log, "scheduler_started", interval=self.interval,
                   plan_every_s=int(self.plan_every.total_seconds()))
        while not self._stop.is_set():
            started = self.clock()
            self.tick(started)
            elapsed = (self.clock() - started).total_seconds()
            self._stop.wait(max(self.interval - elapsed, 0.0))
        logs.event(_log, "scheduler_stopped")

    def stop(self) -> None:
        self._stop.set()
