"""Unit tests of the pure engine: start/resume, waits and nudges, limits, state, purity."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest

from bot.engine import runner
from bot.engine.events import (
    AnswerRecorded,
    AnswerRejected,
    EscalationRaised,
    Event,
    FieldSet,
    FlowFailed,
    FollowUpScheduled,
    KeywordSeen,
    MessageCreated,
    QuestionExpired,
    SessionEnded,
    WaitStarted,
)
from bot.engine.flow import Flow
from bot.engine.loader import load_flow_text
from bot.engine.runner import MAX_STEPS_PER_RESUME, Reply, Timeout, VersionMismatch, resume, start
from bot.engine.session import Participant, Session

E = TypeVar("E", bound=Event)
T0 = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)
ENGINE = Path(__file__).resolve().parents[1] / "bot" / "engine"


class FakeLocalizer:
    """Marks translated text with the language, so tests see which catalog was used."""

    def __init__(self, language: str) -> None:
        self._language = language

    @property
    def language(self) -> str:
        return self._language

    @property
    def revision(self) -> str:
        return "test"

    def translate(self, context: str, source: str) -> str:
        return source if self._language == "en" else f"[{self._language}] {source}"

    def format_when(self, when: datetime, has_time: bool) -> str:
        return when.strftime("%Y-%m-%d %H:%M" if has_time else "%Y-%m-%d")


def catalogs(language: str) -> FakeLocalizer:
    return FakeLocalizer(language)


def flow(text: str) -> Flow:
    loaded, problems = load_flow_text(text, "test.yaml")
    assert loaded is not None and not [p for p in problems if p.level == "error"], problems
    return loaded


CHECKIN = flow("""
spec: 1
id: checkin
version: 3
steps:
  - id: mood
    ask: How do you feel, 0 to 10?
    answer: scale
    reprompt: Still there? How do you feel, 0 to 10?
    reprompt_after: 2h
    reprompts: 1
    give_up_after: 8h
    on_give_up: missed
    branch:
      - if: answer <= 3
        goto: low
    next: meds
  - id: low
    escalate: {severity: routine, reason: low_mood}
  - id: meds
    ask: Did you take your medicine today?
    answer: yes_no
    max_invalid: 1
    on_invalid: unclear
    give_up_after: 1d
  - id: done
    end: completed
    send: Thank you!
  - id: missed
    end: missed
  - id: unclear
    end: unclear
    send: We will call you.
""")

PERSON = Participant(id="p1", language="en", timezone="America/New_York")


def messages(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, MessageCreated)]


def of(kind: type[E], events: list[Event]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def begin(f: Flow = CHECKIN, who: Participant = PERSON) -> tuple[Session, list[Event]]:
    return start(f, who, T0, catalogs, session_id="s1")


def step(session: Session, event: runner.Resume, at: datetime,
         f: Flow = CHECKIN, who: Participant = PERSON) -> tuple[Session, list[Event]]:
    return resume(f, session, who, event, at, catalogs)


# ---- start / resume ----------------------------------------------------------------------


def test_start_asks_the_first_question_and_waits() -> None:
    session, events = begin()
    assert messages(events) == ["How do you feel, 0 to 10?"]
    (wait,) = of(WaitStarted, events)
    assert wait.wait_id == "s1-1"
    assert wait.reprompt_at == T0 + timedelta(hours=2)
    assert wait.give_up_at == T0 + timedelta(hours=8)
    assert session.status == "waiting" and session.step == "mood"
    assert session.flow_version == 3 and session.started_at == T0


def test_reply_records_the_answer_and_asks_the_next_question_with_a_new_wait_id() -> None:
    session, _ = begin()
    after, events = step(session, Reply("7"), T0 + timedelta(minutes=5))
    assert of(AnswerRecorded, events) == [AnswerRecorded("mood", "mood", 7, "scale")]
    assert messages(events) == ["Did you take your medicine today?"]
    assert [e.wait_id for e in of(WaitStarted, events)] == ["s1-2"]
    assert after.answers == {"mood": 7} and after.step == "meds"
    assert session.answers == {} and session.step == "mood"  # the input is not changed


def test_a_whole_conversation_ends_with_its_outcome() -> None:
    session, _ = begin()
    session, _ = step(session, Reply("8"), T0)
    session, events = step(session, Reply("yes"), T0)
    assert messages(events) == ["Thank you!"]
    assert of(SessionEnded, events) == [SessionEnded("completed", "done")]
    assert session.status == "completed" and session.wait is None
    assert session.answers == {"mood": 8, "meds": True}


def test_answer_in_the_steps_after_a_question_is_that_question_s_answer() -> None:
    session, _ = begin()
    _, events = step(session, Reply("2"), T0)
    assert of(EscalationRaised, events) == [
        EscalationRaised("routine", "low_mood", "low", "checkin")]
    session, _ = begin()
    _, events = step(session, Reply("9"), T0)
    assert not of(EscalationRaised, events)


# ---- nudges ------------------------------------------------------------------------------


def test_stale_timeout_is_a_no_op() -> None:
    session, _ = begin()
    moved, _ = step(session, Reply("7"), T0)
    again, events = step(moved, Timeout("s1-1"), T0 + timedelta(hours=9))
    assert events == []
    assert again == moved


def test_early_timeout_is_a_no_op() -> None:
    session, _ = begin()
    after, events = step(session, Timeout("s1-1"), T0 + timedelta(hours=1, minutes=59))
    assert events == []
    assert after == session


def test_reprompt_is_sent_once_even_if_the_nudge_arrives_twice() -> None:
    session, _ = begin()
    at = T0 + timedelta(hours=2)
    session, events = step(session, Timeout("s1-1"), at)
    assert messages(events) == ["Still there? How do you feel, 0 to 10?"]
    (wait,) = of(WaitStarted, events)
    assert wait.wait_id == "s1-1" and wait.reprompt_at is None
    assert wait.give_up_at == T0 + timedelta(hours=8)
    again, events = step(session, Timeout("s1-1"), at + timedelta(seconds=1))
    assert events == [] and again == session


def test_give_up_takes_the_on_give_up_path() -> None:
    session, _ = begin()
    session, _ = step(session, Timeout("s1-1"), T0 + timedelta(hours=2))
    session, events = step(session, Timeout("s1-1"), T0 + timedelta(hours=8))
    assert of(QuestionExpired, events) == [QuestionExpired("mood")]
    assert session.outcome == "missed" and session.status == "completed"
    assert session.answers == {}


def test_give_up_without_a_path_ends_the_flow_as_expired() -> None:
    session, _ = begin()
    session, _ = step(session, Reply("7"), T0)
    session, events = step(session, Timeout("s1-2"), T0 + timedelta(days=1))
    assert of(QuestionExpired, events) == [QuestionExpired("meds")]
    assert session.outcome == "expired"


def test_restarting_a_wait_counts_from_then_and_gives_back_its_reprompts() -> None:
    session, _ = begin()
    session, _ = step(session, Reply("nope"), T0 + timedelta(minutes=1))  # one invalid answer
    session, _ = step(session, Timeout("s1-1"), T0 + timedelta(hours=2))  # its one re-prompt
    assert session.wait is not None and session.wait.reprompt_at is None
    seen = T0 + timedelta(hours=7, minutes=30)  # when the question reached the participant
    after, events = runner.restart_wait(CHECKIN, session, "s1-1", seen)
    assert events == [WaitStarted("s1-1", "mood", seen + timedelta(hours=2),
                                  seen + timedelta(hours=8))]
    assert after.wait is not None and session.wait.reprompts == 1  # the input is not changed
    assert (after.wait.reprompts, after.wait.invalid) == (0, 1)
    assert after.status == "waiting" and after.updated_at == seen
    # The old give-up time is no longer one: the nudge for it does nothing.
    same, events = step(after, Timeout("s1-1"), T0 + timedelta(hours=8))
    assert events == [] and same == after
    again, events = step(after, Timeout("s1-1"), seen + timedelta(hours=2))
    assert messages(events) == ["Still there? How do you feel, 0 to 10?"]
    _, events = step(again, Timeout("s1-1"), seen + timedelta(hours=8))
    assert of(QuestionExpired, events) == [QuestionExpired("mood")]
    # The answer is taken as ever.
    _, events = step(after, Reply("7"), seen + timedelta(minutes=5))
    assert of(AnswerRecorded, events) == [AnswerRecorded("mood", "mood", 7, "scale")]


def _checkin_v4() -> Flow:
    """The check-in flow at another version than the sessions here started on."""
    return flow("""
spec: 1
id: checkin
version: 4
steps:
  - id: mood
    ask: How are you?
    answer: scale
""")



def test_restarting_another_wait_or_no_wait_changes_nothing() -> None:
    session, _ = begin()
    later = T0 + timedelta(hours=1)
    assert runner.restart_wait(CHECKIN, session, "s1-9", later) == (session, [])
    assert runner.restart_wait(CHECKIN, session, "s1-1", T0) == (session, [])  # same times
    ended, _ = step(session, Timeout("s1-1"), T0 + timedelta(hours=8))
    assert ended.wait is None
    assert runner.restart_wait(CHECKIN, ended, "s1-1", later) == (ended, [])
    newer = _checkin_v4()
    with pytest.raises(VersionMismatch):
        runner.restart_wait(newer, session, "s1-1", later)


# ---- invalid answers ---------------------------------------------------------------------


def test_invalid_answer_is_re_asked_with_a_hint_then_accepted() -> None:
    session, _ = begin()
    session, events = step(session, Reply("purple"), T0)
    assert of(AnswerRejected, events) == [AnswerRejected("mood", 1, False)]
    assert messages(events) == ["Please reply with a number from 0 to 10."]
    assert session.step == "mood" and session.wait is not None and session.wait.invalid == 1
    session, events = step(session, Reply("6"), T0)
    assert of(AnswerRecorded, events)[0].value == 6


def test_retries_exhausted_take_the_on_invalid_path() -> None:
    session, _ = begin()
    session, _ = step(session, Reply("5"), T0)
    session, events = step(session, Reply("banana"), T0)
    assert messages(events) == ["Please reply YES or NO."]
    session, events = step(session, Reply("banana"), T0)
    assert of(AnswerRejected, events) == [AnswerRejected("meds", 2, True)]
    assert messages(events) == ["We will call you."]
    assert session.outcome == "unclear" and "meds" not in session.answers


# ---- limits and versions -----------------------------------------------------------------


def test_a_loop_without_a_question_fails_after_max_steps() -> None:
    loop = flow("""
spec: 1
id: loop
version: 1
steps:
  - id: a
    set: {count: 1}
  - id: b
    branch:
      - else: a
""")
    session, events = start(loop, PERSON, T0, catalogs, session_id="s1")
    (failed,) = of(FlowFailed, events)
    assert "loops" in failed.reason
    assert len(of(FieldSet, events)) == (MAX_STEPS_PER_RESUME + 1) // 2
    assert session.status == "failed" and session.wait is None
    assert of(SessionEnded, events)[-1].outcome == "failed"


def test_resume_refuses_another_version_of_the_flow() -> None:
    session, _ = begin()
    newer = _checkin_v4()
    with pytest.raises(VersionMismatch):
        resume(newer, session, PERSON, Reply("5"), T0, catalogs)


# ---- state -------------------------------------------------------------------------------


def test_session_json_round_trip_mid_conversation_resumes_identically() -> None:
    session, _ = begin()
    session, _ = step(session, Reply("nope"), T0)  # one invalid attempt is part of the state
    session, _ = step(session, Timeout("s1-1"), T0 + timedelta(hours=2))
    text = session.to_json()
    restored = Session.from_json(text)
    assert restored == session
    assert restored.to_json() == text
    json.loads(text)  # plain JSON
    for event in (Reply("4"), Reply("nope"), Timeout("s1-1")):
        at = T0 + timedelta(hours=8)
        assert step(restored, event, at) == step(session, event, at)


def test_pending_date_confirmation_survives_a_json_round_trip() -> None:
    visit = flow("""
spec: 1
id: visit
version: 1
steps:
  - id: when
    ask: What day?
    answer: date
  - id: done
    end: completed
""")
    session, _ = start(visit, PERSON, T0, catalogs, session_id="v")
    session, events = resume(visit, session, PERSON, Reply("2026-03-10"), T0, catalogs)
    assert messages(events) == ["2026-03-10. Is that right? Please reply YES or NO."]
    restored = Session.from_json(session.to_json())
    assert resume(visit, restored, PERSON, Reply("yes"), T0, catalogs) == \
        resume(visit, session, PERSON, Reply("yes"), T0, catalogs)


def test_keywords_are_reported_and_do_not_move_the_session() -> None:
    session, _ = begin()
    after, events = step(session, Reply("STOP"), T0 + timedelta(minutes=1))
    assert events == [KeywordSeen("stop", None)]
    assert (after.step, after.wait, after.answers, after.status) == \
        (session.step, session.wait, session.answers, session.status)


def test_language_keyword_switches_language_and_re_asks_the_question() -> None:
    session, _ = begin()
    after, events = step(session, Reply("ESPAÑOL"), T0)
    assert of(KeywordSeen, events) == [KeywordSeen("language", "es")]
    assert messages(events) == ["[es] How do you feel, 0 to 10?"]
    assert [e.language for e in of(MessageCreated, events)] == ["es"]
    assert after.language == "es" and after.wait == session.wait
    _, events = step(after, Reply("purple"), T0)
    assert messages(events) == ["[es] Please reply with a number from 0 to 10."]


def test_setting_the_language_field_switches_the_conversation_language() -> None:
    choose = flow("""
spec: 1
id: choose
version: 1
steps:
  - id: lang
    ask: Which language?
    answer:
      type: choice
      choices:
        - {value: en, label: English}
        - {value: es, label: Español}
  - id: apply
    set: {language: answer}
  - id: bye
    end: completed
    send: Thank you!
""")
    session, _ = start(choose, PERSON, T0, catalogs, session_id="c")
    session, events = resume(choose, session, PERSON, Reply("2"), T0, catalogs)
    assert of(FieldSet, events) == [FieldSet("language", "es", "en")]
    assert messages(events) == ["[es] Thank you!"]
    assert session.language == "es"


# ---- schedules -----------------------------------------------------------------------------


SCHEDULE = flow("""
spec: 1
id: plan
version: 1
steps:
  - id: tomorrow_nine
    schedule: {flow: checkin, after: 1d, at: "09:00"}
  - id: a_day_later
    schedule: {flow: checkin, after: 1d}
  - id: done
    end: completed
""")


def test_schedule_keeps_local_wall_clock_time_across_dst() -> None:
    la = ZoneInfo("America/Los_Angeles")
    who = Participant(id="p", timezone="America/Los_Angeles")
    # Saturday 7 March 2026, 10:00 PST; clocks go forward at 02:00 on Sunday 8 March.
    now = datetime(2026, 3, 7, 10, 0, tzinfo=la)
    _, events = start(SCHEDULE, who, now, catalogs, session_id="d")
    nine, same_time = (e.due_at for e in of(FollowUpScheduled, events))
    assert nine.astimezone(la).replace(tzinfo=None) == datetime(2026, 3, 8, 9, 0)
    assert nine.astimezone(UTC) == datetime(2026, 3, 8, 16, 0, tzinfo=UTC)  # PDT, UTC-7
    assert same_time.astimezone(la).replace(tzinfo=None) == datetime(2026, 3, 8, 10, 0)
    assert same_time.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=23)  # short day


def test_schedule_hours_are_elapsed_time_on_the_night_clocks_change() -> None:
    plan = flow("""
spec: 1
id: plan
version: 1
steps:
  - id: soon
    schedule: {flow: checkin, after: 1h}
""")
    la = ZoneInfo("America/Los_Angeles")
    who = Participant(id="p", timezone="America/Los_Angeles")
    for now in (datetime(2026, 3, 8, 1, 30, tzinfo=la),  # 01:30 PST -> 03:30 PDT
                datetime(2026, 11, 1, 1, 30, tzinfo=la)):  # 01:30 PDT -> 01:30 PST
        _, events = start(plan, who, now, catalogs, session_id="d")
        (due,) = (e.due_at for e in of(FollowUpScheduled, events))
        assert due.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=1)


def test_schedule_at_a_time_already_past_today_moves_to_the_next_day() -> None:
    plan = flow("""
spec: 1
id: plan
version: 1
steps:
  - id: later
    schedule: {flow: checkin, at: "09:00"}
""")
    who = Participant(id="p", timezone="America/Los_Angeles")
    now = datetime(2026, 11, 1, 0, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    _, events = start(plan, who, now, catalogs, session_id="d")
    (due,) = (e.due_at for e in of(FollowUpScheduled, events))
    assert due.astimezone(ZoneInfo("America/Los_Angeles")).replace(tzinfo=None) == \
        datetime(2026, 11, 1, 9, 0)  # same day: 09:00 is still ahead (clocks fall back at 2)
    assert due > now


# ---- purity ------------------------------------------------------------------------------

FORBIDDEN = {"flask", "twilio", "rq", "redis", "sqlmodel", "sqlalchemy", "requests", "babel"}


def _imported(path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute module names an import statement brings in (relative ones resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        return [node.module or ""]
    package = list(path.relative_to(ENGINE.parents[1]).with_suffix("").parts)[:-1]
    base = package[: len(package) - (node.level - 1)]
    return [".".join([*base, node.module] if node.module else base)]


def test_the_engine_imports_no_io_library() -> None:
    offenders: list[str] = []
    for path in sorted(ENGINE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _imported(path, node):
                top = name.split(".")[0]
                # bot.* outside the engine is the shell (bot.i18n imports babel, and so on).
                shell = top == "bot" and not (name + ".").startswith("bot.engine.")
                if top in FORBIDDEN or shell:
                    offenders.append(f"{path.relative_to(ENGINE.parent)}:{node.lineno} {name}")
    assert offenders == []
    assert len(list(ENGINE.rglob("*.py"))) > 10  # the walk did find the engine


VISIT = flow("""
spec: 1
id: visit
version: 1
steps:
  - id: when
    ask: When can you come?
    answer: datetime
  - id: done
    end: true
""")


def test_a_day_without_a_time_does_not_answer_a_datetime_question() -> None:
    session, _ = begin(VISIT)
    session, events = step(session, Reply("tomorrow"), T0, VISIT)
    assert of(AnswerRejected, events)
    assert session.wait is not None and session.wait.kind == "answer"
    session, events = step(session, Reply("tomorrow at 3pm"), T0, VISIT)
    assert session.wait is not None and session.wait.kind == "confirm"
    assert "15:00" in messages(events)[0] or "3:00" in messages(events)[0]
