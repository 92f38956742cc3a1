"""`bot db`: create and migrate the database."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Settings, UnsafeSettings
from .groups import main

FLOWS_DEFAULT_HELP = "FLOWS_DIR, else flows/ here, else the shipped flows"

URL_HELP = "Database URL (default: DATABASE_URL from the environment or .env)."


def settings_of(ctx: click.Context) -> Settings:
    """Settings handed in by a caller (tests), else from the environment."""
    obj = ctx.find_object(Settings)
    return obj if obj is not None else Settings.from_env()


def default_flows_dir() -> Path:
    """FLOWS_DIR when it is set (the folder the bot runs); else `flows/` here, else the
    shipped one, so that a copy of the project is checked and tested whole."""
    ctx = click.get_current_context(silent=True)
    configured = (settings_of(ctx) if ctx is not None else Settings.from_env()).flows_dir
    if configured != Settings.flows_dir:
        return _nearby(Path(configured))
    here = Path("flows")
    return here if here.is_dir() else Path(configured)


def _nearby(path: Path) -> Path:
    """`path` relative to here when it is under here: shorter file names in messages."""
    try:
        return path.relative_to(Path.cwd()) if path.is_absolute() else path
    except ValueError:
        return path


def live_settings(ctx: click.Context, process: str) -> Settings:
    """Settings for a process that may reach Twilio: refused while placeholders remain."""
    settings = settings_of(ctx)
    try:
        settings.require_live(process)
    except UnsafeSettings as exc:
        raise click.ClickException(str(exc)) from None
    return settings


def open_database(ctx: click.Context) -> Settings:
    """Settings for a command that uses the database, migrated first (a no-op when current)."""
    from ..store import schema

    settings = settings_of(ctx)
    schema.upgrade(settings.database_url)
    return settings


def _shown(url: str) -> str:
    """The URL without its password, for screens and logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def db() -> None:
    """Create and migrate the database."""


@db.command("upgrade")
@click.option("--url", help=URL_HELP)
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def upgrade(ctx: click.Context, url: str | None, revision: str) -> None:
    """Apply every migration the database has not had yet."""
    from ..store import schema

    url = url or settings_of(ctx).database_url
    before = schema.current(url)
    schema.upgrade(url, revision)
    after = schema.current(url)
    if before == after:
        click.echo(f"{_shown(url)}: already at {', '.join(after) or 'nothing'}")
    else:
        click.echo(f"{_shown(url)}: {', '.join(before) or 'empty'} -> {', '.join(after)}")


@db.command("current")
@click.option("--url", help=URL_HELP)
@click.pass_context
def current(ctx: click.Context, url: str | None) -> None:
    """Show the database's revision and whether migrations are waiting."""
    from ..store import schema

    url = url or settings_of(ctx).database_url
    revs = schema.current(url)
    latest = schema.head()
    state = "up to date" if revs == (latest,) else f"needs upgrade to {latest}"
    click.echo(f"{_shown(url)}: {', '.join(revs) or 'not created'} ({state})")


@db.command("check")
@click.option("--url", help=URL_HELP)
@click.pass_context
def check(ctx: click.Context, url: str | None) -> None:
    """Fail if the models differ from the migrated schema (a migration is missing)."""
    from ..store import schema

    url = url or settings_of(ctx).database_url
    diffs = schema.differences(url)
    if not diffs:
        click.echo("models and database schema agree")
        return
    for diff in diffs:
        click.echo(f"differs: {diff}", err=True)
    ctx.exit(1)


@db.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does.")
def revision(message: str) -> None:
    """Write a migration for model changes (in a source checkout)."""
    from ..store import schema

    path = schema.new_revision(message)
    if path is None:
        raise click.ClickException("the models match the migrations: nothing to write")
    click.echo(f"wrote {path}: review it before committing")
