"""`bot run`: start the bot on its embedded defaults."""

from __future__ import annotations

import click

from .groups import main


@main.command("run")
@click.pass_context
def run(ctx: click.Context) -> None:
    """Start the bot locally. For now: the simulator on the daily check-in."""
    from .simulate import simulate

    ctx.invoke(simulate, flow="daily_checkin", lang="en", tz="UTC", script=None)
