"""`bot worker`: deliver the outbox (and run other RQ jobs) in a non-forking worker."""

from __future__ import annotations

import click

from .db import live_settings, open_database
from .groups import main


@main.command("worker")
@click.option("--queues", "-q", default="outbox,nudges,default", show_default=True,
              help="Comma-separated RQ queues, highest priority first.")
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
@click.option("--with-scheduler", is_flag=True,
              help="Also move scheduled jobs (retries, later sends) onto their queues.")
@click.option("--sweep-every", type=click.FloatRange(min=0), default=0, show_default=True,
              metavar="SECONDS", help="Also sweep the outbox this often (0: never).")
@click.option("--name", help="Worker name (default: RQ's).")
@click.option("--quiet", is_flag=True, help="Only warnings from RQ itself (no line per job).")
@click.pass_context
def worker(ctx: click.Context, queues: str, burst: bool, with_scheduler: bool,
           sweep_every: float, name: str | None, quiet: bool) -> None:
    """Send outbox messages through Twilio, in batches, at the senders' rate limits.

    One process sends on OUTBOX_SEND_THREADS threads; run more processes to go faster.
    See docs/operations.md.
    """
    from workers.worker import run

    from ..store.db import is_sqlite

    # Like the web app: SQLite brings itself up to date, PostgreSQL is migrated by the
    # operator (`bot db upgrade`) before new code starts; a dozen workers racing to
    # migrate would be the way to break it.
    settings = live_settings(ctx, "bot worker")
    if is_sqlite(settings.database_url):
        settings = open_database(ctx)
    names = [q.strip() for q in queues.split(",") if q.strip()]
    if not names:
        raise click.BadParameter("name at least one queue", param_hint="--queues")
    run(settings, queues=names, burst=burst, with_scheduler=with_scheduler,
        sweep_every=sweep_every, name=name, log_level="WARNING" if quiet else "INFO")
