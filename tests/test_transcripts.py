"""Every golden transcript under tests/transcripts, plus the transcript checker's own rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine.flow import Flow
from bot.engine.transcript import Mismatch, parse_transcript, run_transcript
from bot.i18n import catalogs
from bot.simulator import load_flows

ROOT = Path(__file__).resolve().parents[1]
TRANSCRIPTS = ROOT / "tests" / "transcripts"
CASES = sorted(TRANSCRIPTS.rglob("*.yaml"))


@pytest.fixture(scope="module")
def flows() -> dict[str, Flow]:
    return load_flows(ROOT / "flows")


def check(text: str, flows: dict[str, Flow], path: str = "case.yaml") -> list[Mismatch]:
    return run_transcript(parse_transcript(text, path), path, flows, catalogs)


@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(TRANSCRIPTS)) for p in CASES])
def test_transcript(path: Path, flows: dict[str, Flow]) -> None:
    rel = str(path.relative_to(ROOT))
    mismatches = check(path.read_text(encoding="utf-8"), flows, rel)
    assert not mismatches, "\n" + "\n".join(str(m) for m in mismatches)


def test_every_shipped_flow_has_english_and_spanish_transcripts(flows: dict[str, Flow]) -> None:
    for flow_id in flows:
        folder = TRANSCRIPTS / flow_id
        names = [p.name for p in folder.glob("*.yaml")]
        for lang in ("en", "es"):
            assert any(n.startswith(f"{lang}_") for n in names), f"{flow_id}: no {lang}_*.yaml"


# ---- the checker reports what differs, where -------------------------------------------------

HEAD = """\
participant: {language: en, timezone: America/New_York}
start: {flow: daily_checkin, now: "2026-03-02T08:30:00"}
exchange:
"""
ASK = ("Hello! How do you feel today? Reply with a number from 0 to 10. "
       "0 means very bad, 10 means very good.")
REPROMPT = ("We have not heard from you yet today. How do you feel? Reply with a number "
            "from 0 (very bad) to 10 (very good).")
MEDS = "Did you take your study medicine today? Reply YES or NO."


def test_a_passing_transcript_has_no_mismatches(flows: dict[str, Flow]) -> None:
    text = HEAD + f"""\
  - expect: ["{ASK}"]
  - send: "7"
  - expect: ["{MEDS}"]
  - events: [{{type: answer, key: wellbeing, value: 7}}]
"""
    assert check(text, flows) == []


def test_a_different_message_is_reported_at_the_expect_line(flows: dict[str, Flow]) -> None:
    text = HEAD + f"""\
  - expect: ["{ASK}"]
  - send: "7"
  - expect:
      - "Did you take your medicine?"
"""
    (m,) = check(text, flows)
    assert m.line == 7 and "message 1 differs" in m.message and MEDS in m.message
    assert str(m).startswith("case.yaml:7: ")


def test_messages_nobody_checked_are_a_mismatch(flows: dict[str, Flow]) -> None:
    first, last = check(HEAD + '  - send: "7"\n', flows)
    assert first.line == 2 and "no `expect`" in first.message and "How do you feel" in first.message
    assert last.line == 4 and "at the end" in last.message and "study medicine" in last.message


def test_a_missing_event_is_reported_with_the_events_that_happened(flows: dict[str, Flow]) -> None:
    text = HEAD + f"""\
  - expect: ["{ASK}"]
  - send: "7"
  - expect: ["{MEDS}"]
  - events:
      - {{type: answer, key: wellbeing, value: 8}}
"""
    (m,) = check(text, flows)
    assert m.line == 8 and "no event" in m.message and "value: 7" in m.message


def test_replies_are_text_even_when_yaml_would_read_a_boolean(flows: dict[str, Flow]) -> None:
    data = parse_transcript("exchange:\n  - send: yes\n  - send: 007\n")
    assert [item["send"] for item in data["exchange"]] == ["yes", "007"]


def test_clock_moves_fire_the_re_prompt_and_the_give_up(flows: dict[str, Flow]) -> None:
    text = HEAD + f"""\
  - expect: ["{ASK}"]
  - wait: 8h
  - expect:
      - "{REPROMPT}"
  - events: [{{type: expired, step: wellbeing}}, {{type: ended, outcome: expired}}]
  - outcome: expired
"""
    assert check(text, flows) == []


def test_a_malformed_transcript_names_the_line(flows: dict[str, Flow]) -> None:
    (m,) = check(HEAD + "  - wait: soon\n", flows)
    assert m.line == 4 and "duration" in m.message
    (m,) = check(HEAD.replace("flow: daily_checkin", "flow: nope") + "  - send: hi\n", flows)
    assert m.line == 2 and "no flow `nope`" in m.message


def test_misspelt_setup_keys_and_missing_params_are_reported(flows: dict[str, Flow]) -> None:
    text = HEAD.replace("timezone:", "timzone:") + "  - send: hi\n"
    problems = check(text, flows)
    assert problems[0].line == 1 and "unknown key `timzone`" in problems[0].message
    (m,) = check(HEAD.replace("daily_checkin", "visit_reminder") + "  - send: hi\n", flows)
    assert m.line == 2 and "needs params: visit_at" in m.message
    (m,) = check(HEAD.replace("language: en", "language: xx") + "  - send: hi\n", flows)
    assert m.line == 1 and "`xx` is not one of" in m.message
