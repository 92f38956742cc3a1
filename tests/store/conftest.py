"""Running `bot` commands against the test database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.config import Settings

Cli = Callable[..., Result]


@pytest.fixture
def cli(settings: Settings) -> Cli:
    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, [*args], obj=settings, input=input,
                                  catch_exceptions=False)
    return run
