"""The worker process: RQ's SimpleWorker (no fork per job), running batched send jobs.

RQ's default worker forks a child for every job; here that alone caps a worker at about
50 jobs a second. The outbox needs hundreds of messages a second, so:

- no fork: `OutboxWorker` is a `SimpleWorker`, and keeps its database engine, Twilio
  client (with its HTTP connection pool), rate limiter and thread pool across jobs;
- batches: one job carries up to OUTBOX_BATCH_SIZE message ids (claim, decide, send,
  record), so the per-job cost of RQ is paid once per batch;
- threads inside the job: Twilio's API answers in tens of milliseconds, spent waiting, so
  OUTBOX_SEND_THREADS sends overlap in each worker.

Scale out with more worker processes (on more machines); the claim's SKIP LOCKED and the
shared rate limiter keep them from stepping on each other. docs/operations.md has more.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from redis import Redis
from rq import Queue, SimpleWorker

from bot import logs, outbox
from bot.config import Settings
from bot.store.db import dispose_engines

from . import send
from .sweep import SweepLoop

DEFAULT_QUEUES: tuple[str, ...] = (outbox.QUEUE, "nudges", "default")
_log = logs.get_logger("worker")
_fork_hook_installed = False


def _after_fork_in_child() -> None:
    # RQ's scheduler runs in a forked process: it must not share our database connections
    # or our send context (sockets, threads).
    dispose_engines()
    send.set_context(None)


def install_fork_hook() -> None:
    global _fork_hook_installed
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_installed = True


class OutboxWorker(SimpleWorker):
    """Runs jobs in this process (no fork), so state made once serves every job."""


def configure_logging(level: int = logging.INFO) -> None:
    if not logs.is_configured():
        logs.configure(level=level)
    send.quiet_http_logs()


def run(settings: Settings, *, queues: Sequence[str] = DEFAULT_QUEUES, burst: bool = False,
        with_scheduler: bool = False, sweep_every: float = 0.0, name: str | None = None,
        redis: Redis | None = None, max_jobs: int | None = None,
        log_level: str = "INFO") -> bool:
    """Work until stopped (or, with `burst`, until the queues are empty)."""
    settings.require_live("The worker")
    configure_logging()
    install_fork_hook()
    connection = redis or Redis.from_url(settings.redis_url)
    ctx = send.SendContext.create(settings, connection)
    send.set_context(ctx)
    loop = SweepLoop(settings, connection, sweep_every).start() if sweep_every > 0 else None
    worker = OutboxWorker([Queue(q, connection=connection) for q in queues], name=name,
                          connection=connection)
    logs.event(_log, "worker_started", worker=worker.name, queues=list(queues), burst=burst,
               scheduler=with_scheduler, sweep_every=sweep_every,
               threads=settings.outbox_send_threads, batch=settings.outbox_batch_size,
               rate_limit=settings.send_rate_limit or "twilio defaults")
    try:
        return bool(worker.work(burst=burst, with_scheduler=with_scheduler, max_jobs=max_jobs,
                                logging_level=log_level))
    finally:
        if loop is not None:
            loop.stop()
        send.set_context(None)
        ctx.close()
        dispose_engines(close=True)


def main() -> None:
    """`python -m workers.worker`: a worker on the default queues, from the environment."""
    run(Settings.from_env(), with_scheduler=True, sweep_every=10.0)


if __name__ == "__main__":
    main()
