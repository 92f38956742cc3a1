"""Checks that need the whole flow (or the whole folder), run after the loader.

The loader (`bot.engine.loader`) refuses what cannot be read: bad YAML, unknown keys, wrong
types. The checks here find flows that load but would misbehave with a participant: a
`goto` to a step that does not exist, a step nothing leads to, a question whose answer falls
through the rules, a placeholder that would print empty, a message that costs too many SMS,
a loop that never asks anything. Every problem names file, line and step, in plain words.

`check_paths` is what `bot flows check` runs: it loads every flow file, reads the study
settings (`study.yaml`) beside them, and adds the checks that span files.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .expr import Expr, _compare
from .flow import AnswerSpec, Flow, Step, Text
from .languages import SUPPORTED, primary
from .loader import ID_RE, _Map, build_flow, flow_files, read_yaml
from .problems import FlowError, Level, Problem, did_you_mean
from .roster import ROSTER_FILE, check_folder
from .segments import measure, non_gsm_chars

STUDY_FILE = "study.yaml"
DEFAULT_SEGMENT_BUDGET = 3
#: Fields every participant has, whatever the study adds in `participant_fields`.
BASE_PARTICIPANT_FIELDS = ("code", "language", "timezone", "checkin_time", "first_name")
#: A placeholder's value is unknown when checking; count it as this many characters.
PLACEHOLDER_WIDTH = 10
STUDY_KEYS = {
    "name", "segment_budget", "participant_fields", "default_language", "languages",
    "contact", "help", "timezone", "quiet_hours", "escalation", "checkin_time",
    "visit_reminders",
}

# The placeholders the engine fills (runner._PLACEHOLDER), and anything else in braces,
# which the engine would send to the participant as it is.
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)\}")
_BRACES = re.compile(r"\{([^{}\n]*)\}")


@dataclass(frozen=True, slots=True)
class StudyInfo:
    """Study-wide settings from `flows/study.yaml`; every field has a usable default."""

    name: str = ""
    segment_budget: int = DEFAULT_SEGMENT_BUDGET
    participant_fields: tuple[str, ...] = ()
    default_language: str = "en"
    languages: tuple[str, ...] = ()
    contact: str = ""
    help: str = ""
    path: str | None = None


def read_study_text(text: str, path: str) -> tuple[StudyInfo, list[Problem]]:
    """Parse study settings; problems are reported and defaults used in their place."""
    try:
        data = read_yaml(text, path)
    except FlowError as exc:
        return StudyInfo(path=path), exc.problems
    problems: list[Problem] = []

    def err(key: str, message: str, suggestion: str | None = None) -> None:
        problems.append(Problem(path, data.key_lines.get(key, 1), None, message, suggestion,
                                code="bad_study"))

    if not isinstance(data, _Map):
        return StudyInfo(path=path), [Problem(path, 1, None, "study settings must be a mapping "
                                              "such as `name: ...`", code="bad_study")]
    for key in sorted(set(data) - STUDY_KEYS):
        problems.append(Problem(path, data.key_lines[key], None,
                                f"`{key}` is not a study setting", did_you_mean(key, STUDY_KEYS),
                                level="warning", code="unknown_key"))
    budget = data.get("segment_budget", DEFAULT_SEGMENT_BUDGET)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        err("segment_budget", "`segment_budget` must be a whole number ≥ 1")
        budget = DEFAULT_SEGMENT_BUDGET
    fields = data.get("participant_fields") or []
    if isinstance(fields, _Map):  # a mapping documents each field: `name: description`
        fields = list(fields)
    if not isinstance(fields, list) or not all(isinstance(f, str) and ID_RE.match(f)
                                               for f in fields):
        err("participant_fields", "`participant_fields` must list field names of lowercase "
            "letters, digits and _", "e.g. participant_fields: [arm, site]")
        fields = []
    languages = data.get("languages") or []
    if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
        err("languages", "`languages` must be a list of language codes", "e.g. [en, es]")
        languages = []
    texts: dict[str, str] = {}
    for key in ("name", "default_language", "contact", "help"):
        value = data.get(key)
        if value is not None and not isinstance(value, (str, _Map)):
            err(key, f"`{key}` must be text")
        elif isinstance(value, str):
            texts[key] = str(value)
    default_language = texts.get("default_language", "en")
    if primary(default_language) not in SUPPORTED:
        # The running bot speaks it to anyone whose own language it does not know.
        err("default_language", f"`default_language` {default_language!r} is not a language "
            "the bot speaks", f"one of: {', '.join(SUPPORTED)}")
        default_language = "en"
    return StudyInfo(
        name=texts.get("name", ""), segment_budget=budget,
        participant_fields=tuple(str(f) for f in fields),
        default_language=default_language,
        languages=tuple(str(x) for x in languages), contact=texts.get("contact", ""),
        help=texts.get("help", ""), path=path,
    ), problems


def load_study(folder: str | Path) -> tuple[StudyInfo | None, list[Problem]]:
    """The study settings in `folder`, or None if it has no `study.yaml`."""
    path = Path(folder) / STUDY_FILE
    if not path.is_file():
        return None, []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), 1, None, f"cannot read the file: {exc}",
                              code="unreadable")]
    return read_study_text(text, str(path))


# ---- one flow ---------------------------------------------------------------------------


def check_flow(flow: Flow, *, study: StudyInfo | None = None,
               known_flows: Collection[str] | None = None) -> list[Problem]:
    """Every semantic problem in `flow`, sorted by line.

    `known_flows` are the flow ids a `schedule:` may name; None skips that check.
    """
    return _Checker(flow, study or StudyInfo(), known_flows).run()


@dataclass(frozen=True, slots=True)
class _Edge:
    target: str
    line: int
    key: str  # the YAML key that names the target, for messages


def _edges(step: Step) -> tuple[list[_Edge], bool]:
    """Where the engine can go after `step`, and whether it can fall off the end of the flow.

    Unlike `Step.targets`, this leaves out the implied `next` when the engine cannot take
    it: after a `branch` with an `else`, or after a question with an `else` rule and an
    `on_invalid` path.
    """
    if step.kind == "end":
        return [], False
    has_else = any(r.condition is None for r in step.rules)
    out = [_Edge(r.goto, r.line, "else" if r.condition is None else "goto") for r in step.rules]
    falls_through = not has_else
    if step.kind == "ask":
        falls_through = not has_else or step.on_invalid is None
        if step.on_invalid:
            out.append(_Edge(step.on_invalid, step.lines.get("on_invalid", step.line),
                             "on_invalid"))
        if step.on_give_up:
            out.append(_Edge(step.on_give_up, step.lines.get("on_give_up", step.line),
                             "on_give_up"))
    if not falls_through:
        return out, False
    if step.next is None:
        return out, True
    return [*out, _Edge(step.next, step.next_line or step.line, "next")], False


class _Checker:
    def __init__(self, flow: Flow, study: StudyInfo, known_flows: Collection[str] | None,
                 *, dropped: Collection[str] = (), graph: bool = True,
                 more_fields: Iterable[str] = ()) -> None:
        self.flow = flow
        self.study = study
        self.known_flows = known_flows
        self.dropped = set(dropped)  # steps the loader refused: not "unknown", just broken
        self.graph = graph
        self.problems: list[Problem] = []
        self.keys = flow.answer_keys()
        fields = {*BASE_PARTICIPANT_FIELDS, *study.participant_fields, *more_fields}
        fields.update(name for s in flow.steps for name, _ in s.assignments)
        self.names = sorted({f"participant.{f}" for f in fields}
                            | {f"answers.{k}" for k in self.keys}
                            | {f"params.{p}" for p in flow.params})
        self.edges = {s.id: _edges(s) for s in flow.steps}
        # For each step, the questions whose answer `answer` can mean there (None: no
        # answer recorded yet in this exchange). Filled only when the graph is checked.
        self.sources: dict[str, set[str | None]] | None = None

    def err(self, line: int, step: str | None, message: str, suggestion: str | None,
            code: str, level: Level = "error") -> None:
        self.problems.append(Problem(self.flow.path, line, step, message, suggestion,
                                     level=level, code=code))

    def run(self) -> list[Problem]:
        self.targets()
        if self.graph:
            self.sources = self.answer_sources()
            reached = self.reachable()
            self.loops(reached)
            self.finishes(reached)
            for step in self.flow.steps:
                if step.kind == "ask":
                    self.unhandled(step)
        for step in self.flow.steps:
            self.conditions(step)
            self.placeholders(step)
            self.lengths(step)
            self.settings(step)
            self.schedule(step)
        return sorted(self.problems, key=lambda p: (p.line, p.code))

    # ---- the graph ----------------------------------------------------------------------

    def targets(self) -> None:
        for step in self.flow.steps:
            named = [_Edge(r.goto, r.line, "else" if r.condition is None else "goto")
                     for r in step.rules]
            if step.next is not None and step.kind != "end":
                named.append(_Edge(step.next, step.next_line or step.line, "next"))
            for key in ("on_invalid", "on_give_up"):
                target = getattr(step, key)
                if target:
                    named.append(_Edge(target, step.lines.get(key, step.line), key))
            for edge in named:
                target, line, key = edge.target, edge.line, edge.key
                if target in self.flow.by_id or target in self.dropped:
                    continue
                self.err(line, step.id, f"`{key}: {target}` names no step",
                         did_you_mean(target, self.flow.by_id)
                         or "use the `id` of a step in this flow", "unknown_target")

    def reachable(self) -> set[str]:
        if self.flow.start not in self.flow.by_id:
            return set()  # the loader reported the bad `start`
        reached = {self.flow.start}
        todo = [self.flow.start]
        while todo:
            for edge in self.edges[todo.pop()][0]:
                if edge.target in self.flow.by_id and edge.target not in reached:
                    reached.add(edge.target)
                    todo.append(edge.target)
        for step in self.flow.steps:
            if step.id not in reached:
                self.err(step.line, step.id, "no path from the start of the flow leads to "
                         "this step", "point a `next:` or `goto:` at it, or delete it",
                         "unreachable")
        return reached

    def loops(self, reached: set[str]) -> None:
        """Cycles made only of steps that do not wait for the participant."""
        quiet = {s.id for s in self.flow.steps if s.kind != "ask" and s.id in reached}
        succ = {sid: [e for e in self.edges[sid][0] if e.target in quiet] for sid in quiet}
        reach: dict[str, set[str]] = {}
        for sid in quiet:
            seen: set[str] = set()
            todo = [e.target for e in succ[sid]]
            while todo:
                cur = todo.pop()
                if cur not in seen:
                    seen.add(cur)
                    todo.extend(e.target for e in succ[cur])
            reach[sid] = seen
        done: set[str] = set()
        for step in self.flow.steps:
            if step.id not in quiet or step.id in done or step.id not in reach[step.id]:
                continue
            cycle = [s for s in self.flow.steps
                     if s.id in reach[step.id] and step.id in reach[s.id]]
            done.update(s.id for s in cycle)
            members = {s.id for s in cycle}
            # Blame the jump that goes back up the file: that is where the loop closes.
            order = {s.id: i for i, s in enumerate(self.flow.steps)}
            back = max(((s, e) for s in cycle for e in succ[s.id]
                        if e.target in members and order[e.target] <= order[s.id]),
                       key=lambda se: order[se[0].id])
            path = " → ".join(f"`{s.id}`" for s in cycle)
            self.err(back[1].line, back[0].id,
                     f"`{back[1].key}: {back[1].target}` goes back without asking anything: "
                     f"{path} would repeat until the bot stops the conversation",
                     "put a question in the loop, or go to a later step", "loop_without_question")

    def answer_sources(self) -> dict[str, set[str | None]]:
        """Which question was answered last on each path into each step.

        The engine lets `answer` in a step after a question mean that question's answer, as
        long as no other question came between; each reply starts afresh, so the walk from
        `start`, `on_invalid` and `on_give_up` carries no answer (None).
        """
        sources: dict[str, set[str | None]] = {s.id: set() for s in self.flow.steps}
        if self.flow.start in sources:
            sources[self.flow.start].add(None)
        todo = list(sources)
        while todo:
            step = self.flow.by_id[todo.pop()]
            has_else = any(r.condition is None for r in step.rules)
            for edge in self.edges[step.id][0]:
                if edge.target not in sources:
                    continue
                carried: set[str | None]
                if step.kind != "ask":
                    carried = sources[step.id]
                elif edge.key in ("goto", "else"):
                    carried = {step.id}
                elif edge.key == "next":  # no rule matched, or the tries ran out
                    carried = ({step.id} if not has_else else set()) \
                        | ({None} if step.on_invalid is None else set())
                else:
                    carried = {None}
                if not carried <= sources[edge.target]:
                    sources[edge.target] |= carried
                    todo.append(edge.target)
        return sources

    def finishes(self, reached: set[str]) -> None:
        if not reached:
            return
        if any(self.flow.by_id[sid].kind == "end" or self.edges[sid][1] for sid in reached):
            return
        first = self.flow.by_id[self.flow.start]
        self.err(first.line, None, "no path from the start reaches an `end` step, so this "
                 "flow never finishes", "add an `end` step and a way to reach it", "no_end",
                 level="warning")

    def unhandled(self, step: Step) -> None:
        """A question whose branch rules leave some answers with nowhere to go."""
        answer = step.answer
        if (answer is None or answer.type not in ("yes_no", "choice") or not step.rules
                or any(r.condition is None for r in step.rules) or step.next is not None):
            return
        values: list[Any] = [True, False] if answer.type == "yes_no" \
            else [c.value for c in answer.choices]
        key = step.save_as or step.id
        missed = [v for v in values
                  if all(_truth(_partial(r.condition.tree, _binder(v, key))) is False
                         for r in step.rules if r.condition is not None)]
        if not missed:
            return
        shown = ", ".join(f"`{_show(v)}`" for v in missed)
        plural = "s" if len(missed) > 1 else ""
        self.err(step.lines.get("branch", step.line), step.id,
                 f"no branch rule handles the answer{plural} {shown}, and this is the last "
                 "step: the conversation would stop without a word",
                 "add `- else: STEP` as the last rule, or a `next:`", "unhandled_answers")

    # ---- conditions and placeholders ----------------------------------------------------

    def conditions(self, step: Step) -> None:
        own = step if step.kind == "ask" else None  # `answer` means this question's answer
        for rule in step.rules:
            if rule.condition is not None:
                self.expression(rule.condition, rule.condition_line or rule.line, step, own)
        if step.condition is not None:
            self.expression(step.condition, step.lines.get("if", step.line), step, None)
        for name, value in step.assignments:
            self.expression(value, step.lines.get(f"set.{name}", step.line), step, None)

    def expression(self, expr: Expr, line: int, step: Step, own: Step | None) -> None:
        for name in sorted(expr.names):
            self.name(name, line, step, own, placeholder=False)
        for left, right in _comparisons(expr.tree):
            for side, other in ((left, right), (right, left)):
                if side[0] != "name":
                    continue
                asked: list[Step] = []
                if side[1] == "answer":
                    asked = [own] if own else self.answered_before(step)
                elif side[1].startswith("answers."):
                    hit = self.keys.get(side[1].removeprefix("answers."))
                    asked = [hit] if hit else []
                specs = [a.answer for a in asked if a.answer is not None]
                if specs and all(a.type == specs[0].type for a in specs):
                    self.comparison(expr, side[1], other, specs, line, step)

    def answered_before(self, step: Step) -> list[Step]:
        if self.sources is None:
            return []
        came = self.sources.get(step.id, set())
        return [self.flow.by_id[sid] for sid in sorted(sid for sid in came if sid is not None)]

    def comparison(self, expr: Expr, name: str, other: tuple[Any, ...],
                   specs: list[AnswerSpec], line: int, step: Step) -> None:
        """Literals that the answer can never equal: a typo'd choice, `"yes"` in quotes..."""
        literals = [other[1]] if other[0] == "lit" else \
            [i[1] for i in other[1] if i[0] == "lit"] if other[0] == "list" else []
        answer = specs[0]  # all of one type; a shared step may follow several questions
        values = list(dict.fromkeys(c.value for spec in specs for c in spec.choices))
        for lit in literals:
            if lit is None:
                continue
            if answer.type in ("choice", "multi_choice"):
                if isinstance(lit, str) and lit not in values:
                    self.err(line, step.id, f"`{name}` is never `{lit}` in `{expr.source}`: "
                             f"the choices are {', '.join(values)}",
                             _suggest(lit, values) or "use one of the choice values",
                             "unknown_choice")
                elif not isinstance(lit, str):
                    self.err(line, step.id, f"`{name}` is never `{_literal(lit)}` in "
                             f"`{expr.source}`: a choice answer is stored as its value, not "
                             "its number", f"use one of {', '.join(values)}", "bad_comparison")
            elif answer.type == "yes_no" and not isinstance(lit, bool):
                self.err(line, step.id, f"`{name}` is a yes/no answer and is never "
                         f"`{_literal(lit)}` in `{expr.source}`",
                         "write yes or no without quotes", "bad_comparison")
            elif answer.type in ("number", "scale") and (isinstance(lit, (str, bool))):
                self.err(line, step.id, f"`{name}` is a number and is never `{_literal(lit)}` "
                         f"in `{expr.source}`", "compare with a number, e.g. "
                         f"`{name} >= 7`", "bad_comparison")

    def name(self, name: str, line: int, step: Step, own: Step | None, *,
             placeholder: bool) -> None:
        shown = f"`{{{name}}}`" if placeholder else f"`{name}`"
        if name == "answer":
            came = self.sources.get(step.id, set()) if self.sources is not None else set()
            if own is None and came and not came - {None}:  # unreachable: reported already
                self.err(line, step.id, f"{shown} is always empty here: no question is "
                         "answered on the way to this step", self.previous_answer(step),
                         "answer_outside_question")
            return
        if name in self.names:
            return
        root = name.split(".")[0]
        kinds = {"answers": "question in this flow saves", "params": "flow parameter is",
                 "participant": "participant field is"}
        if root in kinds and name.count(".") == 1:
            what = f"no {kinds[root]} called `{name.split('.', 1)[1]}`"
        else:
            what = "the bot cannot fill it"
        self.err(line, step.id, f"{shown} names nothing: {what}",
                 _suggest(name, self.names) or _hint(root),
                 "unknown_placeholder" if placeholder else "unknown_name")

    def previous_answer(self, step: Step) -> str:
        before = [s for s in self.flow.steps if s.kind == "ask" and s.line < step.line]
        key = (before[-1].save_as or before[-1].id) if before else "KEY"
        return f"use `answers.{key}`"

    def placeholders(self, step: Step) -> None:
        own = step if step.kind == "ask" else None
        for text in step.texts():
            for m in _BRACES.finditer(text.source):
                inner = m.group(1)
                if _PLACEHOLDER.fullmatch(m.group(0)):
                    self.name(inner, text.line, step, own, placeholder=True)
                    continue
                self.err(text.line, step.id, f"`{{{inner}}}` is not a placeholder the bot can "
                         "fill; it would be sent as it is",
                         _suggest(_normalize(inner), self.names)
                         or "placeholders look like {participant.first_name}",
                         "unknown_placeholder")

    # ---- messages -----------------------------------------------------------------------

    def lengths(self, step: Step) -> None:
        budget = self.flow.segment_budget or self.study.segment_budget
        if step.text is not None:
            body = step.text.source
            what = "this message"
            if step.kind == "ask" and step.answer and step.answer.choices \
                    and step.answer.show_choices:
                # The participant gets the question and the numbered options in one message.
                body += "\n" + "\n".join(f"{i}. {c.label.source}"
                                         for i, c in enumerate(step.answer.choices, 1))
                what = "this question with its numbered choices"
            self.length(body, step.text, what, budget, step)
        for text, what in ((step.hint, "this hint"), (step.reprompt, "this reminder")):
            if text is not None:
                self.length(text.source, text, what, budget, step)

    def length(self, body: str, text: Text, what: str, budget: int, step: Step) -> None:
        sample = _PLACEHOLDER.sub("x" * PLACEHOLDER_WIDTH, body)
        m = measure(sample)
        if m.segments <= budget:
            return
        unit = "characters" if m.encoding == "GSM-7" else "UTF-16 units"
        suggestion = "shorten it, or split it into two messages"
        odd = non_gsm_chars(sample)
        if odd:
            plain = measure("".join(c for c in sample if c not in odd)).segments
            shown = " ".join(f"`{c}`" for c in odd[:5])
            suggestion = (f"{shown} force UCS-2 (70 characters per SMS instead of 160); without "
                          f"them it would be {plain} segment{'s' if plain > 1 else ''}"
                          if plain <= budget else suggestion)
        self.err(text.line, step.id, f"{what} is {m.segments} SMS segments ({m.encoding}, "
                 f"{m.units} {unit}); the budget is {budget}", suggestion, "too_long")

    # ---- settings -----------------------------------------------------------------------

    def settings(self, step: Step) -> None:
        if step.kind != "ask":
            return
        if step.on_invalid == step.id:
            self.err(step.lines.get("on_invalid", step.line), step.id,
                     "`on_invalid` asks the same question again, with a fresh count, for ever",
                     "send the participant on (e.g. to the next step) after the last try",
                     "endless_reask")
        unused = [("on_give_up", "give_up_after"), ("reprompt", "reprompt_after"),
                  ("reprompts", "reprompt_after")]
        for key, needs in unused:
            if key in step.lines and needs not in step.lines:
                self.err(step.lines[key], step.id, f"`{key}` has no effect without `{needs}`",
                         f"add `{needs}:` (e.g. 1d) or remove `{key}`", "ineffective_setting",
                         level="warning")

    def schedule(self, step: Step) -> None:
        if step.kind != "schedule" or step.schedule_flow is None or self.known_flows is None:
            return
        if step.schedule_flow in self.known_flows:
            return
        self.err(step.lines.get("schedule.flow", step.line), step.id,
                 f"`flow: {step.schedule_flow}` names no flow in this folder",
                 did_you_mean(step.schedule_flow, self.known_flows)
                 or "use the `id` of another flow file", "unknown_flow")


# ---- partial evaluation: which answers does a rule certainly not take? ----------------

_UNKNOWN: Any = object()  # a value the check cannot know (a participant field, a parameter)


def _binder(value: Any, key: str) -> Callable[[str], Any]:
    def bind(name: str) -> Any:
        return value if name in ("answer", f"answers.{key}") else _UNKNOWN

    return bind


def _truth(value: Any) -> bool | None:
    return None if value is _UNKNOWN else bool(value)


def _partial(node: tuple[Any, ...], bind: Callable[[str], Any]) -> Any:
    """Evaluate like `expr._eval`, but with three-valued logic for unknown names."""
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "name":
        return bind(node[1])
    if tag == "list":
        items = [_partial(i, bind) for i in node[1]]
        return _UNKNOWN if any(i is _UNKNOWN for i in items) else items
    if tag in ("and", "or"):
        left, right = _truth(_partial(node[1], bind)), _truth(_partial(node[2], bind))
        decisive = tag == "or"  # True decides an `or`, False decides an `and`
        if decisive in (left, right):
            return decisive
        return _UNKNOWN if None in (left, right) else not decisive
    if tag == "not":
        inner = _truth(_partial(node[1], bind))
        return _UNKNOWN if inner is None else not inner
    a, b = _partial(node[2], bind), _partial(node[3], bind)
    return _UNKNOWN if a is _UNKNOWN or b is _UNKNOWN else _compare(node[1], a, b)


def _comparisons(node: tuple[Any, ...]) -> Iterable[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """The two sides of every comparison in a condition tree."""
    tag = node[0]
    if tag == "cmp":
        yield node[2], node[3]
    elif tag in ("and", "or"):
        yield from _comparisons(node[1])
        yield from _comparisons(node[2])
    elif tag == "not":
        yield from _comparisons(node[1])


# ---- wording helpers --------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return repr(value) if isinstance(value, str) and not ID_RE.match(value) else str(value)


def _literal(value: Any) -> str:
    """A condition literal as the coordinator wrote it: quoted if it is text."""
    return f'"{value}"' if isinstance(value, str) else _show(value)


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9_.]+", "_", text.strip().lower()).strip("_")


def _suggest(word: str, candidates: Sequence[str]) -> str | None:
    """`did you mean`, ignoring case, that also finds `participant.first_name` for `first_name`."""
    ends = [c for c in candidates if c.endswith("." + word) or c.lower() == word.lower()]
    if ends:
        return f"did you mean `{ends[0]}`?"
    low = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(word.lower(), list(low), n=1, cutoff=0.6)
    return f"did you mean `{low[match[0]]}`?" if match else None


def _hint(root: str) -> str:
    return {
        "answers": "use `answers.KEY` where KEY is a question's `save_as` or `id`",
        "params": "declare it under `params:` at the top of the flow",
        "participant": "participant fields are code, language, timezone, checkin_time, "
                       "first_name, fields set with `set:` and the study's "
                       "`participant_fields`",
    }.get(root, "names start with answers., participant. or params.")


# ---- files and folders ------------------------------------------------------------------


@dataclass
class _Loaded:
    path: Path
    flow: Flow | None
    problems: list[Problem]
    raw_ids: list[str] = field(default_factory=list)
    id_line: int = 1


def _load(path: Path) -> _Loaded:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _Loaded(path, None, [Problem(str(path), 1, None, f"cannot read the file: {exc}",
                                            code="unreadable")])
    try:
        data = read_yaml(text, str(path))
    except FlowError as exc:
        return _Loaded(path, None, exc.problems)
    flow, problems = build_flow(data, str(path))
    loaded = _Loaded(path, flow, problems)
    if isinstance(data, _Map):
        loaded.id_line = data.key_lines.get("id", 1)
        steps = data.get("steps")
        if isinstance(steps, list):
            loaded.raw_ids = [s["id"] for s in steps
                              if isinstance(s, _Map) and isinstance(s.get("id"), str)]
    return loaded


def _flow_id(path: Path) -> str | None:
    """The `id` of a flow file, without checking the rest of it."""
    try:
        data = read_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, FlowError):
        return None
    fid = data.get("id") if isinstance(data, _Map) else None
    return fid if isinstance(fid, str) else None


def check_paths(paths: Sequence[str | Path]) -> list[Problem]:
    """Load and check every flow file under `paths` (files or folders), and `study.yaml`."""
    problems: list[Problem] = []
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            problems.append(Problem(str(p), 1, None, "no such file or folder", code="not_found"))
        elif p.is_file() and p.name in (STUDY_FILE, ROSTER_FILE):
            continue  # read below as the settings of its folder, never as a flow
        else:
            files.extend(flow_files([p]))
    folders = sorted({f.parent for f in files} | {Path(p) for p in paths
                                                  if Path(p).is_dir()})
    studies_only = any(Path(p).name in (STUDY_FILE, ROSTER_FILE) for p in paths)
    if not files and not problems and not studies_only:
        problems.append(Problem(", ".join(str(p) for p in paths) or ".", 1, None,
                                "no flow files found", "flow files end in .yaml",
                                code="no_flows"))
    studies: dict[Path, StudyInfo] = {}
    for folder in folders + [Path(p).parent for p in paths if Path(p).name == STUDY_FILE]:
        if folder in studies:
            continue
        study, study_problems = load_study(folder)
        studies[folder] = study or StudyInfo()
        problems.extend(study_problems)
    # The escalation policy and on-call roster of each folder checked (bot/engine/roster.py).
    for folder in sorted({Path(p) for p in paths if Path(p).is_dir()}
                         | {Path(p).parent for p in paths if Path(p).name == ROSTER_FILE}):
        problems.extend(check_folder(folder))

    loaded = [_load(f) for f in files]
    by_path = {item.path: item for item in loaded}
    known: dict[Path, set[str]] = {}
    set_fields: dict[Path, set[str]] = {}
    for folder in folders:
        ids = known.setdefault(folder, set())
        for f in flow_files([folder]):
            item = by_path.get(f)
            fid = item.flow.id if item and item.flow else _flow_id(f)
            if fid:
                ids.add(fid)
    for item in loaded:
        ids = known.setdefault(item.path.parent, set())
        if item.flow:
            ids.add(item.flow.id)
            set_fields.setdefault(item.path.parent, set()).update(
                name for s in item.flow.steps for name, _ in s.assignments)

    first_seen: dict[str, _Loaded] = {}
    for item in loaded:
        problems.extend(item.problems)
        flow = item.flow
        if flow is None:
            continue
        if flow.id in first_seen:
            other = first_seen[flow.id]
            problems.append(Problem(str(item.path), item.id_line, None,
                                    f"flow id `{flow.id}` is already used by {other.path}",
                                    "give each flow its own id", code="duplicate_flow"))
        else:
            first_seen[flow.id] = item
        clean = not any(p.level == "error" for p in item.problems)
        checker = _Checker(
            flow, studies.get(item.path.parent, StudyInfo()), known.get(item.path.parent),
            dropped=set(item.raw_ids) - set(flow.by_id), graph=clean,
            more_fields=set_fields.get(item.path.parent, ()))
        problems.extend(checker.run())
    return sorted(problems, key=lambda p: (p.path, p.line, p.code))
