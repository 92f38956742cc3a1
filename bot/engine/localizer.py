"""The engine's port for language: translation and date wording come from outside.

The shell implements this with gettext catalogs and babel (`bot.i18n`); the engine only
calls it, so it stays free of I/O and of any particular catalog format.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol


class Localizer(Protocol):
    @property
    def language(self) -> str: ...

    @property
    def revision(self) -> str:
        """Identifies the catalog content the participant saw (stamped on answers)."""
        ...

    def translate(self, context: str, source: str) -> str: ...

    def format_when(self, when: datetime, has_time: bool) -> str: ...


Catalogs = Callable[[str], Localizer]


class SourceLocalizer:
    """Shows the source text as written: for tests and the source language itself."""

    def __init__(self, language: str = "en") -> None:
        self._language = language

    @property
    def language(self) -> str:
        return self._language

    @property
    def revision(self) -> str:
        return "source"

    def translate(self, context: str, source: str) -> str:
        return source

    def format_when(self, when: datetime, has_time: bool) -> str:
        return when.strftime("%A %d %B %Y, %H:%M" if has_time else "%A %d %B %Y")


def source_catalogs(language: str) -> Localizer:
    return SourceLocalizer(language)
