"""`bot db upgrade | current | check`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from bot.config import Settings
from bot.store import schema


def test_upgrade_a_new_database_then_nothing_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    runner = CliRunner()
    head = schema.head()
    result = runner.invoke(main, ["db", "current", "--url", url])
    assert result.output == f"{url}: not created (needs upgrade to {head})\n"
    result = runner.invoke(main, ["db", "upgrade", "--url", url])
    assert (result.exit_code, result.output) == (0, f"{url}: empty -> {head}\n")
    result = runner.invoke(main, ["db", "upgrade", "--url", url])
    assert result.output == f"{url}: already at {head}\n"
    result = runner.invoke(main, ["db", "current", "--url", url])
    assert result.output == f"{url}: {head} (up to date)\n"


def test_default_url_comes_from_settings(settings: Settings) -> None:
    result = CliRunner().invoke(main, ["db", "current"], obj=settings)
    assert result.exit_code == 0
    assert result.output.endswith("(up to date)\n")


def test_check_passes_when_models_match(settings: Settings) -> None:
    result = CliRunner().invoke(main, ["db", "check"], obj=settings)
    assert (result.exit_code, result.output) == (0, "models and database schema agree\n")


def test_check_fails_on_a_missing_migration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    schema.upgrade(url, "0001")  # the models now have audit_head too
    result = CliRunner().invoke(main, ["db", "check", "--url", url])
    assert result.exit_code == 1
    assert "audit_head" in result.stderr


def test_passwords_are_not_shown(tmp_path: Path) -> None:
    from bot.cli.db import _shown

    assert _shown("postgresql+psycopg://bot:s3cret@db:5432/bot") == (
        "postgresql+psycopg://bot:***@db:5432/bot")
