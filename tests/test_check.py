"""The flow checker, `bot flows check`, and SMS segment counting."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.engine.check import StudyInfo, check_flow, check_paths, read_study_text
from bot.engine.loader import MAX_FILE_BYTES, load_flow_text
from bot.engine.problems import Problem
from bot.engine.segments import encoding, measure, non_gsm_chars, segments

ROOT = Path(__file__).resolve().parents[1]
BROKEN = ROOT / "tests" / "broken_flows"
FIXTURES = sorted(BROKEN.glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (?P<code>\w+) line (?P<line>\d+) step (?P<step>\S+)$")


def expectation(path: Path) -> tuple[str, int, str | None]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = _EXPECT.match(first)
    assert m, f"{path.name}: the first line must be `# expect: CODE line N step ID`"
    step = m["step"]
    return m["code"], int(m["line"]), None if step == "-" else step


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def problems_in(text: str, study: StudyInfo | None = None) -> list[Problem]:
    flow, problems = load_flow_text(textwrap.dedent(text).lstrip(), "flow.yaml")
    assert flow is not None, problems
    assert not [p for p in problems if p.level == "error"], problems
    return check_flow(flow, study=study)


def codes(problems: list[Problem]) -> list[str]:
    return [p.code for p in problems]


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["flows", "check", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


# ---- one fixture per kind of problem ----------------------------------------------------


def test_there_is_a_fixture_for_every_required_kind() -> None:
    found = {expectation(f)[0] for f in FIXTURES}
    required = {
        "unknown_target", "unreachable", "duplicate_id", "unhandled_answers",
        "unknown_placeholder", "too_long", "bad_severity", "bad_answer_type", "unknown_key",
        "unsafe_yaml", "yaml_syntax", "bad_condition", "loop_without_question",
        "unknown_choice", "bad_version", "unknown_flow",
    }
    assert required <= found
    assert {"yaml_alias.yaml", "unsafe_tag.yaml"} <= {f.name for f in FIXTURES}


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_broken_fixture(fixture: Path) -> None:
    code, line, step = expectation(fixture)
    problems = check_paths([fixture])
    found = [(p.code, p.line, p.step) for p in problems]
    assert (code, line, step) in found
    # One kind of mistake per file, so nothing else should be reported.
    assert {p.code for p in problems} == {code}, found
    for p in problems:
        assert p.path == str(fixture)
        assert p.message and "Traceback" not in p.message

    level = next(p.level for p in problems if p.code == code)
    args = [str(fixture)] if level == "error" else ["--strict", str(fixture)]
    exit_code, output = run_cli(*args)
    assert exit_code == 1
    assert f"{fixture}:{line}: {level}:" in output
    if step:
        assert f"step `{step}`:" in output
    if level == "warning":
        assert run_cli(str(fixture))[0] == 0


def test_broken_folder_reports_every_fixture() -> None:
    exit_code, output = run_cli(str(BROKEN))
    assert exit_code == 1
    for fixture in FIXTURES:
        _, line, _ = expectation(fixture)
        assert f"{fixture}:{line}:" in output


def test_oversized_file(tmp_path: Path) -> None:
    step = "  - id: s{n}\n    send: Thank you for taking part in the study, we appreciate it.\n"
    body = "id: huge\nversion: 1\nsteps:\n" + "".join(step.format(n=i) for i in range(4000))
    assert len(body.encode()) > MAX_FILE_BYTES
    path = write(tmp_path, "huge.yaml", body)
    problems = check_paths([path])
    assert [(p.code, p.line, p.step) for p in problems] == [("too_large", 1, None)]
    exit_code, output = run_cli(str(path))
    assert exit_code == 1 and f"{path}:1: error:" in output


def test_deeply_nested_file(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.yaml", "id: deep\nsteps: " + "[" * 5000)
    assert codes(check_paths([path])) == ["too_deep"]


# ---- the shipped flows and the command --------------------------------------------------

VALID = """\
    id: checkin
    version: 3
    params: [visit_at]
    steps:
      - id: meds
        ask: Hi {participant.first_name}, did you take your medication today?
        answer: yes_no
        reprompt_after: 2h
        give_up_after: 8h
        on_give_up: missed
        branch:
          - if: answer == no
            goto: why
      - id: pain
        ask: From 0 to 10, how bad is your pain?
        answer: scale
      - id: alert
        if: answer >= 8
        escalate: {severity: high, reason: severe_pain}
      - id: done
        end: completed
        send: Thank you. See you on {params.visit_at}.
      - id: why
        ask: What got in the way?
        answer:
          type: choice
          choices: [Forgot, Side effects, Other]
        branch:
          - if: answer == side_effects
            goto: alert_side_effects
          - else: pain
      - id: alert_side_effects
        escalate: {severity: routine, reason: side_effects}
        next: pain
      - id: missed
        schedule: {flow: checkin, at: "09:00"}
        next: done
"""


def test_valid_example_has_no_problems(tmp_path: Path) -> None:
    assert problems_in(VALID) == []
    write(tmp_path, "checkin.yaml", VALID)
    assert check_paths([tmp_path]) == []
    exit_code, output = run_cli(str(tmp_path))
    assert exit_code == 0
    assert "1 flow file checked: no problems" in output


def test_shipped_flows_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = [f for f in (ROOT / "flows").glob("*.yaml")
               if f.name not in ("study.yaml", "roster.yaml")]
    assert shipped, "flows/ holds the study's flows"
    monkeypatch.chdir(ROOT)
    exit_code, output = run_cli()  # the default path is flows/
    assert exit_code == 0, output
    assert f"{len(shipped)} flow files checked" in output
    exit_code, output = run_cli("flows")
    assert exit_code == 0, output


def test_json_output(tmp_path: Path) -> None:
    fixture = BROKEN / "unknown_target.yaml"
    exit_code, output = run_cli("--format", "json", str(fixture))
    assert exit_code == 1
    report = json.loads(output)
    assert report["errors"] == 1 and report["ok"] is False
    (problem,) = report["problems"]
    assert problem == {
        "path": str(fixture), "line": 13, "step": "confirm", "level": "error",
        "code": "unknown_target", "message": "`goto: mesd` names no step",
        "suggestion": "did you mean `meds`?",
    }


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    exit_code, output = run_cli(str(tmp_path / "nope"))
    assert exit_code == 1 and "no such file or folder" in output
    exit_code, output = run_cli(str(tmp_path))
    assert exit_code == 1 and "no flow files found" in output


def test_message_format() -> None:
    (problem,) = check_paths([BROKEN / "unknown_target.yaml"])
    assert str(problem) == (f"{BROKEN / 'unknown_target.yaml'}:13: error: step `confirm`: "
                            "`goto: mesd` names no step (did you mean `meds`?)")


# ---- cross-flow checks and study settings -----------------------------------------------


def test_duplicate_flow_ids(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "id: same\nversion: 1\nsteps:\n  - id: s\n    send: Hi\n")
    write(tmp_path, "b.yaml", "# copy\nid: same\nversion: 1\nsteps:\n  - id: s\n    send: Hi\n")
    problems = check_paths([tmp_path])
    assert [(p.code, Path(p.path).name, p.line) for p in problems] == \
        [("duplicate_flow", "b.yaml", 2)]


def test_schedule_names_a_flow_in_the_same_folder(tmp_path: Path) -> None:
    write(tmp_path, "reminder.yaml", "id: reminder\nversion: 1\nsteps:\n  - id: s\n"
          "    send: Hi\n")
    sched = write(tmp_path, "first.yaml", """\
        id: first
        version: 1
        steps:
          - id: later
            schedule:
              flow: remindr
              after: 1d
        """)
    (problem,) = check_paths([tmp_path])
    assert (problem.code, problem.line, problem.suggestion) == \
        ("unknown_flow", 6, "did you mean `reminder`?")
    # Checking one file still knows its neighbours.
    assert codes(check_paths([sched])) == ["unknown_flow"]
    sched.write_text(sched.read_text().replace("remindr", "reminder"))
    assert check_paths([sched]) == []


def test_study_settings(tmp_path: Path) -> None:
    write(tmp_path, "study.yaml", """\
        name: HEART-2
        segment_budget: 1
        participant_fields: [arm, site]
        default_language: es
        contact: Call 555-0100
        """)
    write(tmp_path, "hello.yaml", """\
        id: hello
        version: 1
        steps:
          - id: hi
            send: Welcome to the {participant.site} clinic, arm {participant.arm}.
          - id: long
            send: "%s"
        """ % ("word " * 40))
    problems = check_paths([tmp_path])
    # study.yaml is settings, not a flow, and its budget (1) applies.
    assert [(p.code, p.step) for p in problems] == [("too_long", "long")]
    assert "the budget is 1" in problems[0].message
    assert check_paths([tmp_path / "study.yaml"]) == []
    exit_code, output = run_cli(str(tmp_path / "study.yaml"))
    assert exit_code == 0 and "0 flow files checked: no problems" in output


def test_study_problems_are_reported(tmp_path: Path) -> None:
    study, problems = read_study_text("segment_budjet: 2\nsegment_budget: none\n", "study.yaml")
    assert study.segment_budget == 3
    assert sorted((p.code, p.level, p.line) for p in problems) == \
        [("bad_study", "error", 2), ("unknown_key", "warning", 1)]
    assert any(p.suggestion == "did you mean `segment_budget`?" for p in problems)


@pytest.mark.parametrize(("value", "ok"), [("es", True), ("es-MX", True), ("pt-BR", True),
                                           ("xx", False), ("english", False)])
def test_the_default_language_must_be_one_the_bot_speaks(value: str, ok: bool) -> None:
    study, problems = read_study_text(f"name: S\ndefault_language: {value}\n", "study.yaml")
    if ok:
        assert problems == [] and study.default_language == value
    else:
        assert [(p.code, p.line) for p in problems] == [("bad_study", 2)]
        assert problems[0].suggestion is not None and "es" in problems[0].suggestion
        assert study.default_language == "en"


def test_fields_set_in_another_flow_are_known(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", """\
        id: a
        version: 1
        steps:
          - id: remember
            set: {preferred_time: morning}
        """)
    write(tmp_path, "b.yaml", """\
        id: b
        version: 1
        steps:
          - id: hi
            send: We will write in the {participant.preferred_time}.
        """)
    assert check_paths([tmp_path]) == []


def test_loader_errors_do_not_cascade(tmp_path: Path) -> None:
    # `broken` fails to load; the goto naming it must not also say "names no step".
    path = write(tmp_path, "f.yaml", """\
        id: f
        version: 1
        steps:
          - id: first
            branch:
              - if: participant.language == es
                goto: broken
          - id: broken
            ask: Did you?
            answer: yesno
        """)
    assert codes(check_paths([path])) == ["bad_answer_type"]


# ---- individual checks ------------------------------------------------------------------


def test_unknown_targets_in_every_key() -> None:
    problems = problems_in("""\
        id: f
        version: 1
        steps:
          - id: q
            ask: Did you?
            answer: yes_no
            on_invalid: nowhere
            give_up_after: 1d
            on_give_up: qq
            next: ennd
            branch:
              - else: elsewhere
          - id: end
            end: true
        """)
    found = {(p.message, p.suggestion) for p in problems if p.code == "unknown_target"}
    assert ("`on_give_up: qq` names no step", "did you mean `q`?") in found
    assert ("`next: ennd` names no step", "did you mean `end`?") in found
    assert {m for m, _ in found} >= {"`on_invalid: nowhere` names no step",
                                     "`else: elsewhere` names no step"}


def test_step_after_branch_with_else_is_unreachable() -> None:
    problems = problems_in("""\
        id: f
        version: 1
        steps:
          - id: route
            branch:
              - if: participant.language == es
                goto: done
              - else: done
          - id: orphan
            send: Nobody gets here.
          - id: done
            end: true
        """)
    assert [(p.code, p.step) for p in problems] == [("unreachable", "orphan")]


def test_unhandled_yes_no_names_the_missing_answer() -> None:
    problems = problems_in("""\
        id: f
        version: 1
        start: q
        steps:
          - id: yes_path
            end: true
          - id: q
            ask: Did you?
            answer: yes_no
            branch:
              - if: answer == yes
                goto: yes_path
        """)
    (problem,) = problems
    assert problem.code == "unhandled_answers" and "`no`" in problem.message


def test_rules_depending_on_other_fields_are_not_blamed() -> None:
    # Whether `no` is handled depends on the participant; the check must not guess.
    problems = problems_in("""\
        id: f
        version: 1
        start: q
        steps:
          - id: a
            end: true
          - id: q
            ask: Did you?
            answer: yes_no
            branch:
              - if: answer == yes
                goto: a
              - if: answer == no or participant.language == es
                goto: a
        """)
    assert problems == []
    problems = problems_in("""\
        id: f
        version: 1
        start: q
        steps:
          - id: a
            end: true
          - id: q
            ask: Did you?
            answer: yes_no
            branch:
              - if: answer == yes
                goto: a
              - if: answer == no and participant.language == es
                goto: a
        """)
    assert problems == []  # `no` in English falls through, but that may be intended


def test_placeholders() -> None:
    problems = problems_in("""\
        id: f
        version: 1
        params: [visit_at]
        steps:
          - id: q
            ask: Hello {first_name}, is {params.visit} still good? {answers.q} {Visit Date}
            answer: yes_no
          - id: bye
            send: "{answers.qq} {participant.language} {params.visit_at} {answer}"
        """)
    found = {(p.code, p.message.split(" ")[0], p.suggestion) for p in problems}
    assert ("unknown_placeholder", "`{first_name}`", "did you mean `participant.first_name`?") \
        in found
    assert ("unknown_placeholder", "`{params.visit}`", "did you mean `params.visit_at`?") in found
    assert ("unknown_placeholder", "`{answers.qq}`", "did you mean `answers.q`?") in found
    assert any(p.message.startswith("`{Visit Date}` is not a placeholder") for p in problems)
    assert len(problems) == 4  # {answers.q}, {participant.language}, {answer} are fine


def test_answer_after_a_question_is_that_answer() -> None:
    problems = problems_in("""\
        id: f
        version: 1
        steps:
          - id: pain
            ask: From 0 to 10?
            answer: scale
            give_up_after: 1d
            on_give_up: missed
          - id: alert
            if: answer >= 8
            escalate: {severity: high, reason: pain}
          - id: done
            end: true
          - id: missed
            send: You said {answer}.
            next: done
        """)
    # Reached only by giving up: no answer was recorded on the way.
    assert [(p.code, p.step) for p in problems] == [("answer_outside_question", "missed")]


def test_choice_values_in_conditions() -> None:
    problems = problems_in("""\
        id: f
        version: 1
        steps:
          - id: how
            ask: How bad?
            answer:
              type: choice
              choices:
                - {value: mild, label: Mild}
                - {value: very_severe, label: Very severe}
          - id: alert
            if: answers.how in [very_sever, mild] or answer == Mild
            escalate: {severity: high, reason: bad}
        """)
    assert sorted((p.code, p.suggestion or "") for p in problems) == [
        ("unknown_choice", "did you mean `mild`?"),
        ("unknown_choice", "did you mean `very_severe`?"),
    ]


def test_conditions_name_known_things() -> None:
    problems = problems_in("""\
        id: f
        version: 1
        params: [clinic]
        steps:
          - id: route
            branch:
              - if: params.clinc == north or participant.languag == es or answers == 1
                goto: done
          - id: done
            end: true
        """)
    messages = " ".join(p.message for p in problems)
    assert "`params.clinc`" in messages and "`participant.languag`" in messages
    assert "`answers`" in messages
    assert all(p.code == "unknown_name" for p in problems) and len(problems) == 3
    assert {p.suggestion for p in problems} >= {"did you mean `params.clinic`?",
                                                "did you mean `participant.language`?"}


def test_loop_through_a_question_is_fine_but_quiet_loop_is_not() -> None:
    fine = problems_in("""\
        id: f
        version: 1
        steps:
          - id: q
            ask: Ready?
            answer: yes_no
            branch:
              - if: answer == no
                goto: wait
              - else: done
          - id: wait
            send: OK, I will ask again.
            next: q
          - id: done
            end: true
        """)
    assert fine == []
    quiet = problems_in("""\
        id: f
        version: 1
        steps:
          - id: a
            send: A
          - id: b
            set: {seen: yes}
            next: a
        """)
    (problem,) = [p for p in quiet if p.code == "loop_without_question"]
    assert (problem.step, problem.line) == ("b", 8)  # the `next: a` that closes the loop
    assert "`a` → `b`" in problem.message
    assert "no_end" in codes(quiet)


def test_segment_budget_counts_choices_and_encoding() -> None:
    labels = "".join(f"          - Option number {i} with a rather long label\n" for i in range(8))
    text = (
        "id: f\nversion: 1\nsegment_budget: 2\nsteps:\n  - id: q\n"
        "    ask: Which of these describes how you felt this week? Reply with the number.\n"
        "    answer:\n      type: choice\n      choices:\n" + labels
    )
    (problem,) = problems_in(text)
    assert problem.code == "too_long" and "numbered choices" in problem.message
    assert "3 SMS segments (GSM-7" in problem.message and "budget is 2" in problem.message

    curly = "Please bring your diary \u2019 " + "and your medication " * 4
    (problem,) = problems_in(f"""\
        id: f
        version: 1
        segment_budget: 1
        steps:
          - id: s
            send: "{curly}"
        """)
    assert "UCS-2" in problem.message
    assert problem.suggestion is not None and "`\u2019`" in problem.suggestion


def test_study_budget_and_flow_override() -> None:
    text = """\
        id: f
        version: 1
        steps:
          - id: s
            send: "%s"
        """ % ("x" * 200)
    assert problems_in(text) == []
    assert codes(problems_in(text, StudyInfo(segment_budget=1))) == ["too_long"]
    overridden = textwrap.dedent(text).replace("version: 1", "version: 1\nsegment_budget: 2")
    assert problems_in(overridden, StudyInfo(segment_budget=1)) == []


def test_ineffective_settings_and_endless_reask() -> None:
    problems = problems_in("""\
        id: f
        version: 1
        steps:
          - id: q
            ask: Did you?
            answer: yes_no
            reprompt: Just checking!
            on_invalid: q
          - id: done
            end: true
        """)
    assert sorted((p.code, p.level) for p in problems) == [
        ("endless_reask", "error"), ("ineffective_setting", "warning")]


def test_strict_fails_on_warnings(tmp_path: Path) -> None:
    fixture = BROKEN / "no_end.yaml"
    assert run_cli(str(fixture))[0] == 0
    exit_code, output = run_cli("--strict", str(fixture))
    assert exit_code == 1 and "1 warning" in output


# ---- SMS segments -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("", 1),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("€" * 80, 1),  # extension characters take two septets
    ("€" * 81, 2),
    ("€" * 153, 3),  # 306 septets, but a pair never straddles two parts: 76 + 76 + 1
    ("á" * 70, 1),  # one accent outside GSM-7 switches to UCS-2
    ("á" * 71, 2),
    ("á" * 134, 2),
    ("á" * 135, 3),
    ("😀" * 35, 1),  # an emoji is two UTF-16 units
    ("😀" * 36, 2),
    ("😀" * 67, 3),  # 134 units, but surrogate pairs do not straddle: 33 + 33 + 1
    ("é" * 160, 1),  # é is in the GSM-7 basic set
])
def test_segments(text: str, expected: int) -> None:
    assert segments(text) == expected


def test_encoding() -> None:
    assert encoding("Hello @ £5, ¿qué? Ñ\n") == "GSM-7"
    assert encoding("[x] {y} ~ | ^ \\ €") == "GSM-7"
    assert encoding("Ça va") == "GSM-7" and encoding("ça va") == "UCS-2"
    assert encoding("Hola, ¿cómo está?") == "UCS-2"  # ó and á are not GSM-7
    assert encoding("don\u2019t") == "UCS-2"
    assert non_gsm_chars("cómo está ó") == ["ó", "á"]
    m = measure("[]")
    assert (m.encoding, m.units, m.segments) == ("GSM-7", 4, 1)


def test_the_default_folder_is_flows_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configured = tmp_path / "study-flows"
    configured.mkdir()
    (configured / "unknown_target.yaml").write_text(
        (BROKEN / "unknown_target.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.chdir(ROOT)  # where flows/ would pass
    monkeypatch.setenv("FLOWS_DIR", str(configured))
    exit_code, output = run_cli()
    assert exit_code == 1
    assert f"{configured / 'unknown_target.yaml'}:" in output
    assert "1 flow file checked" in output
    exit_code, output = run_cli("flows")  # a path given wins
    assert exit_code == 0, output
