"""Problems found in a flow file, written for the coordinator who has to fix them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Level = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int
    step: str | None
    message: str
    suggestion: str | None = None
    level: Level = "error"
    code: str = "invalid"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}"
        step = f" step `{self.step}`:" if self.step else ""
        hint = f" ({self.suggestion})" if self.suggestion else ""
        return f"{where}: {self.level}:{step} {self.message}{hint}"


class FlowError(Exception):
    """Raised when a flow cannot be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{match[0]}`?" if match else None
