"""`bot navigators`: the nurse navigators paged about escalations, and who is on call when."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from .. import navigators as navs
from .. import participants_io as pio
from ..engine.roster import (
    ROSTER_FILE,
    format_clock,
    format_days,
    read_roster_text,
    roster_problems,
)
from ..participants import InvalidPhone, mask_phone, normalise_phone
from ..store.db import session_scope
from ..store.types import utcnow
from .db import open_database
from .groups import main

actor_option = click.option("--actor", metavar="NAME",
                            help="Your name for the audit trail (default: your OS user).")


def _phone(raw: str | None, region: str | None) -> str | None:
    if not raw:
        return None
    try:
        return normalise_phone(raw, region.upper() if region else None)
    except InvalidPhone as exc:
        raise click.BadParameter(str(exc), param_hint="--phone") from None


@main.group("navigators")
def navigators_group() -> None:
    """Nurse navigators: add, list, remove, on-call windows, load the roster file."""


@navigators_group.command("add")
@click.argument("name")
@click.option("--phone", help="Mobile number with +country code (alerts and ACK replies).")
@click.option("--email", help="Email address for alerts by email.")
@click.option("--language", default="en", show_default=True, help="Language they speak.")
@click.option("--channels", default="sms", show_default=True,
              help="Where alerts go: sms, whatsapp, email (comma-separated).")
@click.option("--coordinator", is_flag=True,
              help="The study coordinator: the last level of the on-call chain.")
@click.option("--region", metavar="CC", help="Country of a number typed without +code.")
@actor_option
@click.pass_context
def add(ctx: click.Context, name: str, phone: str | None, email: str | None, language: str,
        channels: str, coordinator: bool, region: str | None, actor: str | None) -> None:
    """Add a navigator (NAME is what reports and `--by` show)."""
    settings = open_database(ctx)
    try:
        with session_scope(settings.database_url) as s:
            nav = navs.add(s, actor=pio.staff_actor(actor), name=name,
                           phone=_phone(phone, region), email=email, language=language,
                           channels=channels, coordinator=coordinator)
    except navs.NavigatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {nav.name}: {mask_phone(nav.phone)} {nav.email or ''} "
               f"alerts by {nav.channels}" + (" (coordinator)" if nav.coordinator else ""))


@navigators_group.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """Navigators on the roster, with masked phone numbers."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        rows = navs.active(s)
    if not rows:
        click.echo("no navigators")
        return
    table = [("NAME", "PHONE", "EMAIL", "LANG", "CHANNELS", "ROLE")] + [
        (n.name, mask_phone(n.phone), n.email or "-", n.language, n.channels,
         "coordinator" if n.coordinator else "navigator") for n in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@navigators_group.command("remove")
@click.argument("name")
@actor_option
@click.pass_context
def remove(ctx: click.Context, name: str, actor: str | None) -> None:
    """Take a navigator off the roster (no more alerts; their windows are deleted)."""
    settings = open_database(ctx)
    try:
        with session_scope(settings.database_url) as s:
            navs.remove(s, actor=pio.staff_actor(actor), name=name)
    except navs.NavigatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"removed {name}")


@navigators_group.command("oncall")
@click.argument("name", required=False)
@click.option("--role", type=click.Choice(["primary", "backup"]), default="primary",
              show_default=True)
@click.option("--days", default="daily", show_default=True,
              help="mon-fri, sat,sun, weekdays, weekends or daily.")
@click.option("--from", "start", default="00:00", show_default=True, help="Local HH:MM.")
@click.option("--to", "end", default="24:00", show_default=True,
              help="Local HH:MM; at or before --from runs past midnight.")
@click.option("--timezone", help="IANA zone of the times (default: the roster's, else UTC).")
@click.option("--clear", is_flag=True, help="Remove every window of NAME instead.")
@actor_option
@click.pass_context
def oncall(ctx: click.Context, name: str | None, role: str, days: str, start: str, end: str,
           timezone: str | None, clear: bool, actor: str | None) -> None:
    """Show the on-call schedule, or put NAME on call (or off call, with --clear).

    Without NAME: every window, who is on call now, and the hours nobody covers.
    """
    settings = open_database(ctx)
    if name is not None:
        try:
            with session_scope(settings.database_url) as s:
                if clear:
                    count = navs.clear_windows(s, actor=pio.staff_actor(actor), name=name)
                    click.echo(f"removed {count} window(s) of {name}")
                else:
                    w = navs.add_window(s, actor=pio.staff_actor(actor), name=name, role=role,
                                        days=days, start=start, end=end, timezone=timezone)
                    click.echo(f"{name} is {role} on {w.days} {w.start}-{w.end} ({w.timezone})")
        except navs.NavigatorError as exc:
            raise click.ClickException(str(exc)) from None
    with session_scope(settings.database_url) as s:
        roster = navs.load_roster(s)
    if not roster.windows:
        click.echo("nobody is on call: add windows with `bot navigators oncall NAME ...`")
        ctx.exit(1)
    if name is None:
        click.echo(f"on-call windows ({roster.timezone}):")
        for win in roster.windows:
            click.echo(f"  {win.role:8} {win.navigator:12} {format_days(win.days):16} "
                       f"{format_clock(win.start)}-{format_clock(win.end)}")
        now = utcnow()
        for role_name in ("primary", "backup"):
            people = ", ".join(n.name for n in roster.on_call(role_name, now)) or "nobody"
            click.echo(f"{role_name} now: {people}")
        coordinators = ", ".join(n.name for n in roster.coordinators) or "nobody"
        click.echo(f"coordinator: {coordinators}")
    problems = roster_problems(roster)
    for p in problems:
        click.echo(f"{p.level}: {p.message}", err=True)
    if any(p.level == "error" for p in problems):
        ctx.exit(1)


@navigators_group.command("load")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@actor_option
@click.pass_context
def load(ctx: click.Context, file: Path | None, actor: str | None) -> None:
    """Make the roster in the database match a roster file (default: flows/roster.yaml).

    The file is checked first, as `bot flows check` does; with an error nothing changes.
    """
    settings = open_database(ctx)
    path = file or Path(settings.flows_dir) / ROSTER_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    roster, problems = read_roster_text(text, str(path))
    for p in problems:
        click.echo(str(p), err=True)
    if roster is None or any(p.level == "error" for p in problems):
        raise click.ClickException("the roster has errors: nothing was changed")
    with session_scope(settings.database_url) as s:
        done = navs.replace_roster(s, roster, actor=pio.staff_actor(actor))
    click.echo(f"roster loaded from {path}: {done.added} added, {done.updated} updated, "
               f"{done.removed} removed, {done.windows} on-call windows "
               f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
