"""Small value types shared by the reply parsers and the engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KeywordKind = Literal["stop", "start", "help", "language"]


@dataclass(frozen=True, slots=True)
class Choice:
    """One option of a choice question.

    ``value`` is what gets stored; ``labels`` are what the participant may type (the source
    label and its translation, plus any synonyms). Options are also addressable by their
    1-based position ("2") and letter ("b").
    """

    value: str
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword recognised in any conversation state.

    ``language`` is set only for ``kind == "language"`` and names the requested language.
    """

    kind: KeywordKind
    language: str | None = None
