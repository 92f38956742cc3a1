"""Loading flow files: safe YAML with line numbers, the structural checks, the JSON Schema."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from bot.engine.flow import ANSWER_TYPES, SEVERITIES, SPEC_VERSION, STEP_KINDS
from bot.engine.loader import (
    COMMON_STEP_KEYS,
    FLOW_KEYS,
    MAX_FILE_BYTES,
    STEP_KEYS,
    flow_files,
    load_flow,
    load_flow_text,
    read_yaml,
)
from bot.engine.problems import FlowError, Problem

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "flows"
SCHEMA: dict[str, Any] = json.loads((FLOWS / "schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
SHIPPED = [f for f in sorted(FLOWS.glob("*.yaml")) if f.name not in ("study.yaml", "roster.yaml")]

EXAMPLE = """\
    spec: 1
    id: example
    version: 2
    name: Example
    description: Every step kind once.
    params: [visit_at]
    segment_budget: 2
    source_language: en
    steps:
      - id: hello
        send: Hello {participant.first_name}!
        note: The first message.
      - id: meds
        ask: Did you take your medication today?
        answer: yes_no
        save_as: took_meds
        hint: Please answer YES or NO.
        max_invalid: 3
        on_invalid: pain
        reprompt: Just a reminder about your medication.
        reprompt_after: 2h
        reprompts: 2
        give_up_after: 1d
        on_give_up: bye
        branch:
          - if: answer == no
            goto: why
          - else: pain
      - id: why
        ask: What got in the way?
        answer:
          type: choice
          show_choices: true
          choices:
            - Forgot
            - value: side_effects
              label: Side effects
              synonyms: [sick, nausea]
      - id: pain
        ask: From 0 to 10, how bad is your pain?
        answer: {type: scale, min: 0, max: 10}
      - id: route
        branch:
          - if: answers.pain >= 8 or answers.why == side_effects
            goto: alert
        next: remember
      - id: alert
        if: answers.pain >= 8
        escalate: {severity: high, reason: severe_pain}
      - id: remember
        set: {last_pain: answers.pain, checked_in: yes}
      - id: again
        schedule: {flow: example, after: 1d, at: "09:00"}
      - id: bye
        end: completed
        send: Thank you!
"""


def load(text: str) -> tuple[Any, list[Problem]]:
    return load_flow_text(textwrap.dedent(text).lstrip(), "f.yaml")


def only(text: str) -> Problem:
    flow, problems = load(text)
    assert len(problems) == 1, problems
    return problems[0]


# ---- the JSON Schema --------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_inline_example_loads_and_matches_the_schema() -> None:
    text = textwrap.dedent(EXAMPLE)
    flow, problems = load_flow_text(text, "example.yaml")
    assert problems == [] and flow is not None
    assert [s.kind for s in flow.steps] == [
        "send", "ask", "ask", "ask", "branch", "escalate", "set", "schedule", "end"]
    assert sorted(set(STEP_KINDS)) == sorted({s.kind for s in flow.steps})
    assert list(VALIDATOR.iter_errors(yaml.safe_load(text))) == []


def test_there_are_shipped_flows() -> None:
    assert SHIPPED, "flows/ should hold the study's flows"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_flow_matches_the_schema_and_loads(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in VALIDATOR.iter_errors(yaml.safe_load(text))]
    assert errors == []
    flow = load_flow(path)
    assert flow.version >= 1 and flow.steps


def test_schema_knows_what_the_loader_knows() -> None:
    # The two descriptions of the format must not drift apart.
    defs = SCHEMA["$defs"]
    assert set(SCHEMA["properties"]) == FLOW_KEYS
    assert defs["answer_type"]["enum"] == list(ANSWER_TYPES)
    assert defs["escalate_step"]["properties"]["escalate"]["properties"]["severity"]["enum"] \
        == list(SEVERITIES)
    assert SCHEMA["properties"]["spec"]["maximum"] == SPEC_VERSION
    for kind in STEP_KINDS:
        props = set(defs[f"{kind}_step"]["properties"])
        assert props == COMMON_STEP_KEYS | STEP_KEYS[kind], kind


STRUCTURAL = ["bad_answer_type", "bad_severity", "unknown_key", "missing_version",
              "missing_answer", "future_spec"]


@pytest.mark.parametrize("name", STRUCTURAL)
def test_schema_rejects_structural_mistakes(name: str) -> None:
    # Editors show these while the coordinator types, before `bot flows check` runs.
    text = (ROOT / "tests" / "broken_flows" / f"{name}.yaml").read_text(encoding="utf-8")
    assert list(VALIDATOR.iter_errors(yaml.safe_load(text)))


# ---- safe YAML --------------------------------------------------------------------------


def test_line_numbers_are_kept() -> None:
    flow, problems = load(EXAMPLE)
    assert problems == []
    by_id = flow.by_id
    assert by_id["hello"].line == 10
    assert by_id["hello"].text.line == 11
    assert by_id["meds"].lines["on_give_up"] == 24
    rules = by_id["meds"].rules
    assert (rules[0].condition_line, rules[0].line, rules[1].line) == (26, 27, 28)
    assert by_id["again"].lines["schedule.flow"] == 53
    assert by_id["remember"].lines["set.checked_in"] == 51


@pytest.mark.parametrize(("text", "line", "words"), [
    ("id: f\nbase: &b {x: 1}\nother: *b\n", 2, "anchors (&name)"),
    ("id: f\nbase: &b {x: 1}\n", 2, "anchors (&name)"),
    ("id: f\nother: *b\n", 2, "aliases (*name)"),
    ("id: f\nversion: !!python/object:os.system 1\n", 2, "!!python/object"),
    ("id: f\nversion: !custom 1\n", 2, "`!custom`"),
    ("id: f\nid: g\n", 2, "appears twice"),
    ("id: f\n1: x\n", 2, "must be a word"),
    ("", 1, "empty"),
    ("id: [\n", 2, "ends before"),
    ("id: f\nname: {a: 1\n", 2, "never closed"),
    ("id: f\nname: Note: this\n", 2, "`:` in the middle of a text"),
    ("id: f\nsteps:\n  - id: a\n    send: hi\n   next: b\n", 5, "not indented"),
    ("id: f\n---\nid: g\n", 2, ""),
])
def test_unsafe_or_broken_yaml_is_refused(text: str, line: int, words: str) -> None:
    with pytest.raises(FlowError) as info:
        read_yaml(text, "f.yaml")
    (problem,) = info.value.problems
    assert problem.line == line
    assert words in problem.message


def test_size_and_depth_are_capped() -> None:
    with pytest.raises(FlowError, match="larger than"):
        read_yaml("# " + "x" * MAX_FILE_BYTES, "f.yaml")
    for deep in ("[" * 5000, "a: " + "{a: " * 5000):
        with pytest.raises(FlowError, match="nested too deeply"):
            read_yaml(deep, "f.yaml")


# ---- structure --------------------------------------------------------------------------


def test_implied_next_and_start() -> None:
    flow, problems = load("""\
        id: f
        version: 1
        steps:
          - id: a
            send: A
          - id: b
            send: B
            next: null
          - id: c
            end: true
        """)
    assert problems == []
    assert flow.start == "a"
    assert [s.next for s in flow.steps] == ["b", None, None]


def test_choice_values_from_plain_labels() -> None:
    flow, problems = load("""\
        id: f
        version: 1
        steps:
          - id: q
            ask: How?
            answer:
              type: choice
              choices: [Very bad, "Not great!", OK]
        """)
    assert problems == []
    choices = flow.steps[0].answer.choices
    assert [c.value for c in choices] == ["very_bad", "not_great", "ok"]
    assert choices[1].label.source == "Not great!"
    assert choices[1].label.context == "f:q:choice.not_great"


def test_scale_defaults_to_0_to_10() -> None:
    flow, _ = load("id: f\nversion: 1\nsteps:\n  - id: q\n    ask: How?\n    answer: scale\n")
    answer = flow.steps[0].answer
    assert (answer.minimum, answer.maximum) == (0, 10)


@pytest.mark.parametrize(("body", "code", "words"), [
    ("    answer: {type: number, min: 5, max: 1}", "invalid", "greater than"),
    ("    answer: {type: choice}", "missing_choices", "list of `choices`"),
    ("    answer: {type: yes_no, choices: [a]}", "invalid", "only apply to choice"),
    ("    answer: {type: number, minimum: 1}", "invalid", "no setting `minimum`"),
    ("    answer: {type: choice, choices: [A, a]}", "duplicate_choice", "used twice"),
    ("    answer: {type: choice, choices: [{value: a, label: A, synonym: [x]}]}", "unknown_key",
     "no setting `synonym`"),
    ("    answer: {type: choice, choices: [{value: a, label: A, synonyms: 3}]}", "invalid",
     "`synonyms` must be a list"),
    ("    answer: {type: choice, choices: [{value: A b, label: A}]}", "invalid",
     "must be lowercase"),
    ("    answer: yes_no\n    max_invalid: 11", "invalid", "from 0 to 10"),
    ("    answer: yes_no\n    reprompt_after: soon", "invalid", "not a duration"),
    ("    answer: yes_no\n    reprompt_after: 2h\n    give_up_after: 1h", "invalid",
     "longer than"),
    ("    answer: yes_no\n    save_as: Took Meds", "invalid", "`save_as`"),
    ("    answer: yes_no\n    branch: {if: x}", "invalid", "must be a list"),
    ("    answer: yes_no\n    branch:\n      - if: answer == yes", "invalid", "both `if:`"),
    ("    answer: yes_no\n    branch:\n      - when: x\n        goto: q", "invalid",
     "no `when`"),
])
def test_question_problems(body: str, code: str, words: str) -> None:
    text = "id: f\nversion: 1\nsteps:\n  - id: q\n    ask: How?\n" + body + "\n"
    flow, problems = load_flow_text(text, "f.yaml")
    assert any(p.code == code and words in p.message for p in problems), problems


@pytest.mark.parametrize(("step", "code", "words"), [
    ("  - id: s\n    send: hi\n    ask: hi\n    answer: text", "bad_step_kind", "exactly one"),
    ("  - id: s\n    note: nothing", "bad_step_kind", "none found"),
    ("  - id: Bad Id\n    send: hi", "bad_id", "needs an `id`"),
    ("  - send: hi", "bad_id", "needs an `id`"),
    ("  - just text", "invalid", "must be a mapping"),
    ("  - id: s\n    send: '  '", "invalid", "must be text"),
    ("  - id: s\n    escalate: {severity: high, reason: Bad Reason}", "bad_reason", "`reason`"),
    ("  - id: s\n    escalate: {severity: high, reason: x, level: 2}", "unknown_key",
     "no setting `level`"),
    ("  - id: s\n    escalate: high", "invalid", "needs `severity:`"),
    ("  - id: s\n    schedule: {flow: f}", "invalid", "needs `after:`"),
    ("  - id: s\n    schedule: {flow: f, at: 9am}", "invalid", "local time"),
    ("  - id: s\n    schedule: {flow: f, at: 9:00}", "invalid", "local time"),  # YAML: 540
    ("  - id: s\n    schedule: {flow: Other Flow, after: 1d}", "invalid", "must name a flow"),
    ("  - id: s\n    schedule: {flow: f, after: 1d, when: x}", "unknown_key", "no setting"),
    ("  - id: s\n    set: {Arm: b}", "invalid", "not a valid field name"),
    ("  - id: s\n    set: [a]", "invalid", "must map"),
    ("  - id: s\n    send: hi\n    next: Not An Id", "invalid", "must name a step id"),
    ("  - id: s\n    if: answer >\n    escalate: {severity: high, reason: x}", "bad_condition",
     "incomplete"),
])
def test_step_problems(step: str, code: str, words: str) -> None:
    text = "id: f\nversion: 1\nsteps:\n" + step + "\n"
    flow, problems = load_flow_text(text, "f.yaml")
    assert any(p.code == code and words in p.message for p in problems), problems


@pytest.mark.parametrize(("top", "code", "words"), [
    ("version: 1\nsteps: []", "no_steps", "list of `steps`"),
    ("version: 0\nsteps: [{id: a, send: hi}]", "bad_version", "content `version`"),
    ("version: one\nsteps: [{id: a, send: hi}]", "bad_version", "content `version`"),
    ("version: 1\nstart: b\nsteps: [{id: a, send: hi}]", "unknown_target", "`start: b`"),
    ("version: 1\nstep: []\nsteps: [{id: a, send: hi}]", "unknown_key", "not a flow setting"),
    ("version: 1\nparams: visit\nsteps: [{id: a, send: hi}]", "invalid", "`params`"),
    ("version: 1\nsegment_budget: 0\nsteps: [{id: a, send: hi}]", "invalid", "segment_budget"),
    ("version: 1\nspec: 0\nsteps: [{id: a, send: hi}]", "bad_spec", "whole number"),
    ("version: 1\nspec: 2\nsteps: [{id: a, send: hi}]", "bad_spec", "flow format 2"),
])
def test_flow_problems(top: str, code: str, words: str) -> None:
    flow, problems = load_flow_text("id: f\n" + top + "\n", "f.yaml")
    assert any(p.code == code and words in p.message for p in problems), problems


def test_unknown_keys_get_a_suggestion() -> None:
    problem = only("""\
        id: f
        version: 1
        steps:
          - id: q
            ask: How?
            answer: yes_no
            give_up_afer: 1d
        """)
    assert (problem.code, problem.line, problem.step) == ("unknown_key", 7, "q")
    assert problem.suggestion == "did you mean `give_up_after`?"


def test_load_flow_raises_with_every_error(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("id: f\nsteps:\n  - id: a\n    sned: hi\n", encoding="utf-8")
    with pytest.raises(FlowError) as info:
        load_flow(path)
    assert {p.code for p in info.value.problems} == {"bad_version", "bad_step_kind"}
    assert str(path) in str(info.value)


def test_flow_files_skips_study_settings_and_private_files(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "study.yaml", "_draft.yaml", "notes.txt"):
        (tmp_path / name).write_text("x: 1\n", encoding="utf-8")
    assert [p.name for p in flow_files([tmp_path])] == ["a.yml", "b.yaml"]
