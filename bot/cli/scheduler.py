"""`bot scheduler`: plan check-ins and reminders, enqueue due nudges, sweep the outbox."""

from __future__ import annotations

import signal
from datetime import timedelta
from types import FrameType

import click

from .db import live_settings, open_database
from .groups import main


@main.command("scheduler")
@click.option("--interval", type=click.FloatRange(min=0.1), default=15.0, show_default=True,
              metavar="SECONDS", help="Seconds between passes.")
@click.option("--plan-every", type=click.FloatRange(min=1), default=600.0, show_default=True,
              metavar="SECONDS", help="Seconds between planning passes (check-ins, reminders).")
@click.option("--no-sweep", is_flag=True,
              help="Leave the outbox sweep to the workers (`bot worker --sweep-every`).")
@click.option("--once", is_flag=True, help="One pass, then exit (cron, tests).")
@click.pass_context
def scheduler(ctx: click.Context, interval: float, plan_every: float, no_sweep: bool,
              once: bool) -> None:
    """Fire nudges on time: daily check-ins at each participant's local time, visit
    reminders, re-prompts and follow-ups. Run one, next to `bot worker`. See
    docs/scheduling.md.
    """
    from redis import Redis

    from workers.scheduler import Scheduler

    from .. import logs
    from ..store.db import dispose_engines

    if not logs.is_configured():
        logs.configure()
    live_settings(ctx, "bot scheduler")  # before migrating anything
    settings = open_database(ctx)
    loop = Scheduler(settings, Redis.from_url(settings.redis_url), interval=interval,
                     plan_every=timedelta(seconds=plan_every), sweep=not no_sweep)
    try:
        if once:
            tick = loop.tick()
            planned = tick.planned
            click.echo(f"planned {planned.added if planned else 0} new nudges, "
                       f"{tick.due} due, {tick.enqueued} enqueued, {tick.swept} messages swept")
            if tick.errors:
                raise SystemExit(1)
            return

        def stop(_signum: int, _frame: FrameType | None) -> None:
            loop.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        loop.run()
    finally:
        dispose_engines(close=True)
