"""The in-memory form of a flow file: immutable, validated, ready for the engine.

Each step has exactly one kind, named by its action key in YAML: `send`, `ask`, `branch`,
`set`, `escalate`, `schedule` or `end`. Line numbers are kept so every later check and
runtime error can point the coordinator at the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from .expr import Expr

#: Version of the flow *file format* (not of a flow's content). See `bot.engine.migrations`.
SPEC_VERSION = 1

StepKind = Literal["send", "ask", "branch", "set", "escalate", "schedule", "end"]
AnswerType = Literal[
    "yes_no", "number", "scale", "choice", "multi_choice", "date", "datetime", "text"
]
Severity = Literal["urgent", "high", "routine"]

STEP_KINDS: tuple[StepKind, ...] = ("send", "ask", "branch", "set", "escalate", "schedule", "end")
ANSWER_TYPES: tuple[AnswerType, ...] = (
    "yes_no", "number", "scale", "choice", "multi_choice", "date", "datetime", "text"
)
SEVERITIES: tuple[Severity, ...] = ("urgent", "high", "routine")

#: Defaults a coordinator may override per question.
DEFAULT_MAX_INVALID = 2
DEFAULT_REPROMPTS = 1


@dataclass(frozen=True, slots=True)
class Text:
    """A participant-facing string: the source text and where it came from."""

    source: str
    context: str  # stable gettext msgctxt: "<flow>:<step>:<field>"
    line: int


@dataclass(frozen=True, slots=True)
class ChoiceOption:
    value: str
    label: Text
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AnswerSpec:
    type: AnswerType
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[ChoiceOption, ...] = ()
    show_choices: bool = True


@dataclass(frozen=True, slots=True)
class Rule:
    condition: Expr | None  # None: `else`
    goto: str
    line: int  # the `goto:` (or `else:`) line
    condition_line: int = 0  # the `if:` line


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    kind: StepKind
    line: int
    next: str | None = None  # explicit or implied next step; None ends the flow
    next_line: int = 0
    # send / ask / end
    text: Text | None = None
    # ask
    answer: AnswerSpec | None = None
    save_as: str | None = None
    hint: Text | None = None
    max_invalid: int = DEFAULT_MAX_INVALID
    on_invalid: str | None = None
    reprompt: Text | None = None
    reprompt_after: timedelta | None = None
    reprompts: int = DEFAULT_REPROMPTS
    give_up_after: timedelta | None = None
    on_give_up: str | None = None
    # ask / branch
    rules: tuple[Rule, ...] = ()
    # set: field -> expression
    assignments: tuple[tuple[str, Expr], ...] = ()
    # escalate
    condition: Expr | None = None
    severity: Severity | None = None
    reason: str | None = None
    # schedule
    schedule_flow: str | None = None
    schedule_after: timedelta | None = None
    schedule_at: str | None = None  # local "HH:MM"
    # end
    outcome: str = "completed"
    lines: dict[str, int] = field(default_factory=dict, compare=False, hash=False)

    def targets(self) -> list[tuple[str, int, str]]:
        """Every step id this step can go to, with the line and key that names it."""
        out: list[tuple[str, int, str]] = []
        if self.next is not None and self.kind != "end":
            out.append((self.next, self.next_line or self.line, "next"))
        for rule in self.rules:
            out.append((rule.goto, rule.line, "goto"))
        if self.on_invalid:
            out.append((self.on_invalid, self.lines.get("on_invalid", self.line), "on_invalid"))
        if self.on_give_up:
            out.append((self.on_give_up, self.lines.get("on_give_up", self.line), "on_give_up"))
        return out

    def texts(self) -> list[Text]:
        out = [t for t in (self.text, self.hint, self.reprompt) if t is not None]
        if self.answer is not None:
            out.extend(c.label for c in self.answer.choices)
        return out


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    version: int
    name: str
    path: str
    start: str
    steps: tuple[Step, ...]
    spec: int = SPEC_VERSION
    description: str = ""
    params: tuple[str, ...] = ()
    segment_budget: int | None = None
    source_language: str = "en"
    by_id: dict[str, Step] = field(default_factory=dict, compare=False, hash=False)

    def step(self, step_id: str) -> Step:
        return self.by_id[step_id]

    def answer_keys(self) -> dict[str, Step]:
        return {s.save_as or s.id: s for s in self.steps if s.kind == "ask"}
