"""Load flow files: safe YAML with line numbers, then a structural check into `Flow`.

YAML is read with PyYAML's SafeLoader, and on top of that anchors/aliases, custom tags and
files over `MAX_FILE_BYTES` are refused: flow files are edited by many hands, and those
features either hide content from review or can blow up memory ("billion laughs").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .durations import parse_duration
from .expr import Expr, ExprError, parse_expr
from .flow import (
    ANSWER_TYPES,
    DEFAULT_MAX_INVALID,
    DEFAULT_REPROMPTS,
    SEVERITIES,
    SPEC_VERSION,
    STEP_KINDS,
    AnswerSpec,
    ChoiceOption,
    Flow,
    Rule,
    Step,
    Text,
)
from .migrations import migrate
from .problems import FlowError, Problem, did_you_mean

MAX_FILE_BYTES = 256 * 1024
MAX_STEPS = 500
ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_SAFE_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
)

CHOICE_KEYS = {"value", "label", "synonyms"}
ESCALATE_KEYS = {"severity", "reason"}
SCHEDULE_KEYS = {"flow", "after", "at"}
FLOW_KEYS = {
    "spec", "id", "version", "name", "description", "start", "steps", "params",
    "segment_budget", "source_language",
}
COMMON_STEP_KEYS = {"id", "next", "note"}
STEP_KEYS: dict[str, set[str]] = {
    "send": {"send"},
    "ask": {
        "ask", "answer", "save_as", "hint", "max_invalid", "on_invalid", "reprompt",
        "reprompt_after", "reprompts", "give_up_after", "on_give_up", "branch",
    },
    "branch": {"branch"},
    "set": {"set"},
    "escalate": {"escalate", "if"},
    "schedule": {"schedule"},
    "end": {"end", "send"},
}


class _Map(dict[str, Any]):
    """A YAML mapping that remembers its own line and each key's line (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _List(list[Any]):
    line: int = 0


class _Str(str):
    line: int = 0


def _line(value: Any, default: int = 0) -> int:
    return int(getattr(value, "line", default) or default)


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


def _convert(node: yaml.Node) -> Any:
    line = node.start_mark.line + 1
    if node.tag not in _SAFE_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise _Refused(line, f"the YAML tag `{tag}` is not allowed in flow files")
    if isinstance(node, yaml.MappingNode):
        out = _Map()
        out.line = line
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = _convert(key_node)
            if not isinstance(key, str):
                raise _Refused(key_node.start_mark.line + 1,
                               f"`{key}` must be a word, not a number")
            if key in out:
                raise _Refused(key_node.start_mark.line + 1, f"`{key}` appears twice here")
            out[key] = _convert(value_node)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = _List(_convert(v) for v in node.value)
        seq.line = line
        return seq
    resolved = yaml.constructor.SafeConstructor().construct_object(node)
    if isinstance(resolved, str):
        s = _Str(resolved)
        s.line = line
        return s
    return resolved


class _NoAliasLoader(yaml.SafeLoader):
    # Checked on events: composed nodes no longer say whether they had an anchor.
    def compose_node(self, parent: Any, index: Any) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(line, "YAML aliases (*name) are not allowed in flow files")
        if getattr(event, "anchor", None):
            raise _Refused(line, "YAML anchors (&name) are not allowed in flow files")
        return super().compose_node(parent, index)


def read_yaml(text: str, path: str) -> Any:
    """Parse YAML text into plain data carrying line numbers, or raise FlowError."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise FlowError([Problem(path, 1, None,
                                 f"the file is larger than {MAX_FILE_BYTES // 1024} KB",
                                 "split it into several flows", code="too_large")])
    try:
        loader = _NoAliasLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if node is None:
            raise FlowError([Problem(path, 1, None, "the file is empty", code="empty")])
        return _convert(node)
    except _Refused as exc:
        raise FlowError([Problem(path, exc.line, None, str(exc), code="unsafe_yaml")]) from None
    except yaml.MarkedYAMLError as exc:
        line, what, hint = _explain(exc)
        raise FlowError([Problem(path, line, None, f"YAML syntax: {what}", hint,
                                 code="yaml_syntax")]) from None
    except yaml.YAMLError as exc:
        raise FlowError([Problem(path, 1, None, f"YAML: {exc}", code="yaml_syntax")]) from None
    except RecursionError:
        # PyYAML composes recursively: `[[[[...` would otherwise crash the caller.
        raise FlowError([Problem(path, 1, None, "the file is nested too deeply",
                                 "flow files need only a few levels of indentation",
                                 code="too_deep")]) from None


# PyYAML's messages, in words a coordinator can act on: (problem or context contains,
# plain message, suggestion, blame the line where the construct was opened).
_YAML_HINTS: tuple[tuple[str, str, str, bool], ...] = (
    ("quoted scalar", "a quote opened here is never closed", "add the closing quote", True),
    ("mapping values are not allowed", "there is a `:` in the middle of a text",
     'put the whole text in quotes, e.g. send: "Note: bring your diary"', False),
    ("expected <block end>", "this line is not indented like the lines around it",
     "line it up with the other settings of the same step, using spaces", False),
    ("expected ',' or ']'", "a `[` list opened here is never closed", "add the closing `]`", True),
    ("expected ',' or '}'", "a `{` opened here is never closed", "add the closing `}`", True),
    ("'\\t'", "a tab is used for indenting", "indent with spaces, not tabs", False),
    ("cannot start any token", "a text starts with a character YAML reserves (@ or `)",
     "put the text in quotes", False),
    ("found '<stream end>'", "the file ends before a `[`, `{` or quote is closed",
     "add the missing closing bracket or quote", False),
    ("could not find expected ':'", "a line is missing its `:`, or a quote is not closed",
     "check the line and the one before it", False),
)


def _explain(exc: yaml.MarkedYAMLError) -> tuple[int, str, str]:
    problem, context = exc.problem or "", exc.context or ""
    for needle, message, hint, at_context in _YAML_HINTS:
        if needle in problem or needle in context:
            mark = (exc.context_mark if at_context else None) or exc.problem_mark \
                or exc.context_mark
            return (mark.line + 1 if mark else 1), message, hint
    mark = exc.problem_mark or exc.context_mark
    return (mark.line + 1 if mark else 1), problem or "this is not valid YAML", \
        "check the indentation and quotes"


class _Builder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self.flow_id = "flow"

    def err(self, line: int, step: str | None, message: str, suggestion: str | None = None,
            code: str = "invalid") -> None:
        self.problems.append(Problem(self.path, line, step, message, suggestion, code=code))

    def text(self, value: Any, step: str, key: str, line: int) -> Text | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.err(line, step, f"`{key}` must be text")
            return None
        return Text(source=str(value).strip(), context=f"{self.flow_id}:{step}:{key}",
                    line=_line(value, line))

    def duration(self, data: _Map, key: str, step: str) -> Any:
        if key not in data:
            return None
        try:
            return parse_duration(data[key])
        except ValueError as exc:
            self.err(data.key_lines[key], step, str(exc))
            return None

    def expr(self, source: Any, line: int, step: str) -> Expr | None:
        try:
            return parse_expr(str(source))
        except ExprError as exc:
            self.err(line, step, str(exc), "conditions look like `answer >= 7` or "
                     "`answer in [severe, very_severe]`", code="bad_condition")
            return None

    def target(self, value: Any, line: int, step: str, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not ID_RE.match(value):
            self.err(line, step, f"`{key}: {value}` must name a step id")
            return None
        return str(value)

    def answer(self, data: _Map, step: str) -> AnswerSpec | None:
        raw = data.get("answer")
        line = data.key_lines.get("answer", data.line)
        if raw is None:
            self.err(data.line, step, "a question needs an `answer:` type",
                     "e.g. `answer: yes_no`", code="missing_answer")
            return None
        if isinstance(raw, str):
            raw_map = _Map(type=raw)
            raw_map.line, raw_map.key_lines = line, {"type": line}
            raw = raw_map
        if not isinstance(raw, _Map):
            self.err(line, step, "`answer` must be a type name or a mapping with `type:`")
            return None
        unknown = set(raw) - {"type", "min", "max", "choices", "show_choices"}
        for key in sorted(unknown):
            self.err(raw.key_lines[key], step, f"`answer` has no setting `{key}`",
                     did_you_mean(key, ["type", "min", "max", "choices", "show_choices"]))
        kind = raw.get("type")
        if kind not in ANSWER_TYPES:
            self.err(raw.key_lines.get("type", line), step, f"unknown answer type `{kind}`",
                     did_you_mean(str(kind), ANSWER_TYPES)
                     or f"use one of {', '.join(ANSWER_TYPES)}",
                     code="bad_answer_type")
            return None
        lo, hi = raw.get("min"), raw.get("max")
        if kind == "scale":
            lo = 0 if lo is None else lo
            hi = 10 if hi is None else hi
        for key, val in (("min", lo), ("max", hi)):
            if val is not None and (not isinstance(val, int) or isinstance(val, bool)):
                self.err(raw.key_lines.get(key, line), step, f"`{key}` must be a whole number")
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            self.err(line, step, f"`min` ({lo}) is greater than `max` ({hi})")
        options: list[ChoiceOption] = []
        if kind in ("choice", "multi_choice"):
            choices = raw.get("choices")
            if not isinstance(choices, list) or not choices:
                self.err(line, step, "a choice question needs a list of `choices`",
                         code="missing_choices")
            else:
                seen: set[str] = set()
                for item in choices:
                    opt = self.choice(item, step, _line(choices, line))
                    if opt is None:
                        continue
                    if opt.value in seen:
                        self.err(opt.label.line, step, f"choice value `{opt.value}` is used twice",
                                 code="duplicate_choice")
                    seen.add(opt.value)
                    options.append(opt)
        elif "choices" in raw:
            self.err(raw.key_lines["choices"], step,
                     f"`choices` only apply to choice questions, not `{kind}`")
        return AnswerSpec(type=kind, minimum=lo if isinstance(lo, int) else None,
                          maximum=hi if isinstance(hi, int) else None, choices=tuple(options),
                          show_choices=bool(raw.get("show_choices", True)))

    def choice(self, item: Any, step: str, line: int) -> ChoiceOption | None:
        if isinstance(item, str):
            value = re.sub(r"[^a-z0-9]+", "_", item.lower()).strip("_")
            label = self.text(item, step, f"choice.{value}", _line(item, line))
            return ChoiceOption(value=value, label=label) if label and value else None
        if not isinstance(item, _Map) or "value" not in item or "label" not in item:
            self.err(_line(item, line), step, "each choice needs a `value` and a `label`")
            return None
        for key in sorted(set(item) - CHOICE_KEYS):
            self.err(item.key_lines[key], step, f"a choice has no setting `{key}`",
                     did_you_mean(key, CHOICE_KEYS), code="unknown_key")
        value = str(item["value"])
        if not ID_RE.match(value):
            self.err(item.line, step,
                     f"choice value `{value}` must be lowercase letters, digits and _")
            return None
        label = self.text(item["label"], step, f"choice.{value}", item.key_lines["label"])
        synonyms = item.get("synonyms") or []
        if isinstance(synonyms, str):
            synonyms = [synonyms]
        if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
            self.err(item.key_lines["synonyms"], step, "`synonyms` must be a list of words")
            synonyms = []
        if label is None:
            return None
        return ChoiceOption(value=value, label=label, synonyms=tuple(str(s) for s in synonyms))

    def rules(self, raw: Any, line: int, step: str) -> tuple[Rule, ...]:
        if not isinstance(raw, list):
            self.err(line, step, "`branch` must be a list of `- if: ... goto: ...` rules")
            return ()
        rules: list[Rule] = []
        for item in raw:
            if not isinstance(item, _Map):
                self.err(_line(raw, line), step,
                         "each branch rule is `- if: CONDITION` + `goto: STEP`")
                continue
            rline = item.line
            for key in sorted(set(item) - {"if", "else", "goto"}):
                self.err(item.key_lines[key], step, f"a branch rule has no `{key}`",
                         did_you_mean(key, ["if", "else", "goto"]))
            if "else" in item:
                target = self.target(item["else"], item.key_lines["else"], step, "else")
                if target:
                    rules.append(Rule(None, target, item.key_lines["else"]))
                continue
            if "if" not in item or "goto" not in item:
                self.err(rline, step, "a branch rule needs both `if:` and `goto:`")
                continue
            cond = self.expr(item["if"], item.key_lines["if"], step)
            target = self.target(item["goto"], item.key_lines["goto"], step, "goto")
            if cond is not None and target:
                rules.append(Rule(cond, target, item.key_lines["goto"],
                                  condition_line=item.key_lines["if"]))
        return tuple(rules)

    def step(self, data: Any, index: int, next_id: str | None) -> Step | None:
        if not isinstance(data, _Map):
            self.err(_line(data, 1), None, f"step {index + 1} must be a mapping with an `id`")
            return None
        sid = data.get("id")
        if not isinstance(sid, str) or not ID_RE.match(sid):
            self.err(data.line, None,
                     f"step {index + 1} needs an `id` of lowercase letters, digits and _",
                     code="bad_id")
            return None
        kinds = [k for k in STEP_KINDS if k in data]
        # `ask` may carry `branch` rules and `end` may carry a farewell `send`.
        if "ask" in kinds:
            kinds = [k for k in kinds if k != "branch"]
        if "end" in kinds:
            kinds = [k for k in kinds if k != "send"]
        if len(kinds) != 1:
            found = ", ".join(kinds) if kinds else "none"
            self.err(data.line, sid, f"a step needs exactly one action ({found} found)",
                     f"use one of {', '.join(STEP_KINDS)}", code="bad_step_kind")
            return None
        kind = kinds[0]
        allowed = COMMON_STEP_KEYS | STEP_KEYS[kind]
        for key in sorted(set(data) - allowed):
            article = "an" if kind[0] in "aeiou" else "a"
            self.err(data.key_lines[key], sid,
                     f"`{key}` is not a setting of {article} `{kind}` step",
                     did_you_mean(key, allowed), code="unknown_key")
        lines = dict(data.key_lines)
        explicit_next = "next" in data
        nxt = self.target(data.get("next"), lines.get("next", data.line), sid, "next") \
            if explicit_next else next_id
        base = Step(id=sid, kind=kind, line=data.line, next=nxt,
                    next_line=lines.get("next", 0), lines=lines)
        if kind == "send":
            return replace(base, text=self.text(data["send"], sid, "send", lines["send"]))
        if kind == "end":
            outcome = data["end"]
            outcome = "completed" if outcome is True or outcome is None else str(outcome)
            return replace(base, next=None, outcome=outcome,
                           text=self.text(data.get("send"), sid, "send",
                                          lines.get("send", data.line)))
        if kind == "ask":
            return self.ask(base, data, sid, lines)
        if kind == "branch":
            return replace(base, rules=self.rules(data["branch"], lines["branch"], sid))
        if kind == "set":
            raw = data["set"]
            if not isinstance(raw, _Map) or not raw:
                self.err(lines["set"], sid, "`set` must map participant fields to values")
                return base
            assigns = []
            for key in raw:
                lines[f"set.{key}"] = raw.key_lines[key]
            for key, val in raw.items():
                if not ID_RE.match(key):
                    self.err(raw.key_lines[key], sid, f"`{key}` is not a valid field name")
                    continue
                e = self.expr(val if not isinstance(val, bool) else str(val).lower(),
                              raw.key_lines[key], sid)
                if e:
                    assigns.append((key, e))
            return replace(base, assignments=tuple(assigns), lines=lines)
        if kind == "escalate":
            return self.escalate(base, data, sid, lines)
        return self.schedule(base, data, sid, lines)

    def ask(self, base: Step, data: _Map, sid: str, lines: dict[str, int]) -> Step:
        max_invalid = data.get("max_invalid", DEFAULT_MAX_INVALID)
        reprompts = data.get("reprompts", DEFAULT_REPROMPTS)
        for key, val in (("max_invalid", max_invalid), ("reprompts", reprompts)):
            if not isinstance(val, int) or isinstance(val, bool) or not 0 <= val <= 10:
                self.err(lines.get(key, data.line), sid,
                         f"`{key}` must be a whole number from 0 to 10")
        save_as = data.get("save_as")
        if save_as is not None and (not isinstance(save_as, str) or not ID_RE.match(save_as)):
            self.err(lines["save_as"], sid, "`save_as` must be lowercase letters, digits and _")
            save_as = None
        reprompt_after = self.duration(data, "reprompt_after", sid)
        give_up_after = self.duration(data, "give_up_after", sid)
        if reprompt_after and give_up_after and reprompt_after >= give_up_after:
            self.err(lines["give_up_after"], sid,
                     "`give_up_after` must be longer than `reprompt_after`")
        return replace(
            base,
            text=self.text(data["ask"], sid, "ask", lines["ask"]),
            answer=self.answer(data, sid),
            save_as=save_as,
            hint=self.text(data.get("hint"), sid, "hint", lines.get("hint", data.line)),
            max_invalid=max_invalid if isinstance(max_invalid, int) else DEFAULT_MAX_INVALID,
            on_invalid=self.target(data.get("on_invalid"), lines.get("on_invalid", 0), sid,
                                   "on_invalid"),
            reprompt=self.text(data.get("reprompt"), sid, "reprompt",
                               lines.get("reprompt", data.line)),
            reprompt_after=reprompt_after,
            reprompts=reprompts if isinstance(reprompts, int) else DEFAULT_REPROMPTS,
            give_up_after=give_up_after,
            on_give_up=self.target(data.get("on_give_up"), lines.get("on_give_up", 0), sid,
                                   "on_give_up"),
            rules=self.rules(data["branch"], lines["branch"], sid) if "branch" in data else (),
        )

    def escalate(self, base: Step, data: _Map, sid: str, lines: dict[str, int]) -> Step:
        raw = data["escalate"]
        if not isinstance(raw, _Map):
            self.err(lines["escalate"], sid, "`escalate` needs `severity:` and `reason:`")
            return base
        for key in sorted(set(raw) - ESCALATE_KEYS):
            self.err(raw.key_lines[key], sid, f"`escalate` has no setting `{key}`",
                     did_you_mean(key, ESCALATE_KEYS), code="unknown_key")
        severity = raw.get("severity")
        if severity not in SEVERITIES:
            self.err(raw.key_lines.get("severity", raw.line), sid,
                     f"unknown severity `{severity}`",
                     did_you_mean(str(severity), SEVERITIES)
                     or f"use one of {', '.join(SEVERITIES)}",
                     code="bad_severity")
            severity = None
        reason = raw.get("reason")
        if not isinstance(reason, str) or not ID_RE.match(reason):
            self.err(raw.key_lines.get("reason", raw.line), sid,
                     "`reason` must be a short code such as `severe_symptom`", code="bad_reason")
            reason = None
        cond = self.expr(data["if"], lines["if"], sid) if "if" in data else None
        return replace(base, severity=severity, reason=reason, condition=cond)

    def schedule(self, base: Step, data: _Map, sid: str, lines: dict[str, int]) -> Step:
        raw = data["schedule"]
        if not isinstance(raw, _Map) or "flow" not in raw:
            self.err(lines["schedule"], sid, "`schedule` needs `flow:` and `after:` or `at:`")
            return base
        for key in sorted(set(raw) - SCHEDULE_KEYS):
            self.err(raw.key_lines[key], sid, f"`schedule` has no setting `{key}`",
                     did_you_mean(key, SCHEDULE_KEYS), code="unknown_key")
        flow_id = raw["flow"]
        if not isinstance(flow_id, str) or not ID_RE.match(flow_id):
            self.err(raw.key_lines["flow"], sid, f"`flow: {flow_id}` must name a flow id")
        after = self.duration(raw, "after", sid)
        at = raw.get("at")
        if at is not None and not (isinstance(at, str) and _HHMM.match(at)):
            self.err(raw.key_lines["at"], sid, f"`at: {at}` must be a local time like \"09:00\"",
                     "quote it: at: \"09:00\"")
            at = None
        if after is None and at is None:
            self.err(raw.line, sid,
                     "`schedule` needs `after:` (e.g. 1d) and/or `at:` (e.g. \"09:00\")")
        return replace(base, schedule_flow=str(flow_id), schedule_after=after,
                       schedule_at=at if isinstance(at, str) else None,
                       lines={**base.lines, "schedule.flow": raw.key_lines["flow"]})

    def flow(self, data: Any) -> Flow | None:
        if not isinstance(data, _Map):
            self.err(1, None, "a flow file must be a mapping with `id`, `version` and `steps`")
            return None
        data = migrate(data, self.path, self.problems)
        if data is None:
            return None
        for key in sorted(set(data) - FLOW_KEYS):
            self.err(data.key_lines[key], None, f"`{key}` is not a flow setting",
                     did_you_mean(key, FLOW_KEYS), code="unknown_key")
        fid = data.get("id")
        if not isinstance(fid, str) or not ID_RE.match(fid):
            self.err(data.key_lines.get("id", data.line), None,
                     "the flow needs an `id` of lowercase letters, digits and _", code="bad_id")
            fid = Path(self.path).stem
        self.flow_id = fid
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.err(data.key_lines.get("version", data.line), None,
                     "the flow needs a content `version`: a whole number, raised on every change",
                     code="bad_version")
            version = 0
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            self.err(data.key_lines.get("steps", data.line), None,
                     "the flow needs a list of `steps`", code="no_steps")
            return None
        if len(raw_steps) > MAX_STEPS:
            self.err(data.key_lines["steps"], None, f"a flow may have at most {MAX_STEPS} steps")
            return None
        ids = [s.get("id") if isinstance(s, _Map) else None for s in raw_steps]
        steps: list[Step] = []
        by_id: dict[str, Step] = {}
        for i, raw in enumerate(raw_steps):
            nxt = ids[i + 1] if i + 1 < len(ids) and isinstance(ids[i + 1], str) else None
            step = self.step(raw, i, nxt)
            if step is None:
                continue
            if step.id in by_id:
                self.err(step.line, step.id, f"step id `{step.id}` is already used on line "
                         f"{by_id[step.id].line}", "give each step its own id", code="duplicate_id")
                continue
            by_id[step.id] = step
            steps.append(step)
        start = data.get("start", ids[0] if ids else None)
        if steps and start not in by_id:
            self.err(data.key_lines.get("start", data.line), None,
                     f"`start: {start}` names no step",
                     did_you_mean(str(start), by_id), code="unknown_target")
        params = data.get("params") or []
        if not isinstance(params, list) or not all(isinstance(p, str) and ID_RE.match(p)
                                                   for p in params):
            self.err(data.key_lines["params"], None,
                     "`params` must be a list of names of lowercase letters, digits and _",
                     "e.g. params: [visit_at, clinic]")
            params = [p for p in params if isinstance(p, str)] if isinstance(params, list) else []
        budget = data.get("segment_budget")
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)
                                   or budget < 1):
            self.err(data.key_lines["segment_budget"], None,
                     "`segment_budget` must be a whole number ≥ 1")
            budget = None
        return Flow(
            id=fid, version=version, name=str(data.get("name") or fid), path=self.path,
            start=str(start), steps=tuple(steps), spec=int(data.get("spec", SPEC_VERSION)),
            description=str(data.get("description") or ""),
            params=tuple(str(p) for p in params if isinstance(p, str)),
            segment_budget=budget,
            source_language=str(data.get("source_language") or "en"), by_id=by_id,
        )


def build_flow(data: Any, path: str) -> tuple[Flow | None, list[Problem]]:
    """Turn parsed YAML into a Flow, collecting every structural problem."""
    builder = _Builder(path)
    flow = builder.flow(data)
    return flow, builder.problems


def load_flow_text(text: str, path: str = "<flow>") -> tuple[Flow | None, list[Problem]]:
    try:
        data = read_yaml(text, path)
    except FlowError as exc:
        return None, exc.problems
    return build_flow(data, path)


def load_flow(path: str | Path) -> Flow:
    """Load one flow file; raise FlowError with every problem if it has any errors."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError([Problem(str(p), 1, None, f"cannot read the file: {exc}")]) from None
    flow, problems = load_flow_text(text, str(p))
    errors = [pr for pr in problems if pr.level == "error"]
    if flow is None or errors:
        raise FlowError(errors or problems)
    return flow


def flow_files(paths: list[str | Path]) -> Iterator[Path]:
    """Flow files under the given files or folders (`*.yaml` / `*.yml`), sorted."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            # study.yaml holds settings and roster.yaml the on-call roster: neither is a flow.
            yield from (f for f in found if not f.name.startswith("_")
                        and f.name not in ("study.yaml", "roster.yaml"))
        else:
            yield p


def spec_version() -> int:
    return SPEC_VERSION
