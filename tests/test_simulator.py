"""The simulated shell (clock, nudges, follow-ups), the simulator and its CLI."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.engine.events import Event, FollowUpScheduled, MessageCreated, SessionEnded
from bot.engine.flow import Flow
from bot.engine.session import Participant
from bot.engine.transcript import Conversation, FlowStarted
from bot.i18n import catalogs
from bot.simulator import Simulator, load_flows

ROOT = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")
T0 = datetime(2026, 3, 2, 8, 30, tzinfo=NY)


@pytest.fixture(scope="module")
def flows() -> dict[str, Flow]:
    return load_flows(ROOT / "flows")


def conversation(flows: dict[str, Flow], lang: str = "en") -> Conversation:
    return Conversation(flows, Participant("p", lang, "America/New_York"), T0, catalogs)


def texts(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, MessageCreated)]


def test_moving_the_clock_fires_the_re_prompt_at_its_own_time(flows: dict[str, Flow]) -> None:
    conv = conversation(flows)
    conv.start("daily_checkin")
    assert conv.advance(timedelta(hours=1, minutes=59)) == []
    events = conv.advance(timedelta(minutes=1))
    assert texts(events)[0].startswith("We have not heard from you yet today.")
    assert conv.session is not None and conv.session.updated_at == T0 + timedelta(hours=2)
    assert conv.now == T0 + timedelta(hours=2)


def test_one_long_move_fires_each_due_nudge_in_order(flows: dict[str, Flow]) -> None:
    conv = conversation(flows)
    conv.start("daily_checkin")
    events = conv.advance(timedelta(days=1))
    assert len(texts(events)) == 1  # one re-prompt, then the give-up; the duplicate is stale
    ended = [e for e in events if isinstance(e, SessionEnded)]
    assert ended == [SessionEnded("expired", "wellbeing")]
    assert conv.session is not None and conv.session.updated_at == T0 + timedelta(hours=8)
    assert conv.now == T0 + timedelta(days=1)


def test_a_follow_up_starts_when_due_after_the_check_in_ends(flows: dict[str, Flow]) -> None:
    conv = conversation(flows)
    conv.start("daily_checkin")
    for reply in ("7", "no", "2"):
        events = conv.reply(reply)
    (scheduled,) = [e for e in events if isinstance(e, FollowUpScheduled)]
    assert scheduled.due_at == T0 + timedelta(hours=1)
    # Still answering the check-in when the follow-up comes due: it waits for the end.
    assert conv.advance(timedelta(hours=1, minutes=30)) == []
    events = conv.reply("no")
    started = [e for e in events if isinstance(e, FlowStarted)]
    assert [s.flow for s in started] == ["symptom_questionnaire"]
    assert conv.session is not None and conv.session.flow_id == "symptom_questionnaire"
    assert [s.flow_id for s in conv.sessions] == ["daily_checkin"]


def test_day_moves_keep_the_local_time_across_dst(flows: dict[str, Flow]) -> None:
    conv = Conversation(flows, Participant("p", "en", "America/New_York"),
                        datetime(2026, 3, 7, 8, 30, tzinfo=NY), catalogs)
    conv.advance_days(1)  # 8 March 2026: clocks go forward at 02:00
    assert conv.now.astimezone(NY).replace(tzinfo=None) == datetime(2026, 3, 8, 8, 30)


def test_choosing_a_language_carries_over_to_the_next_flow(flows: dict[str, Flow]) -> None:
    conv = conversation(flows)
    conv.start("onboarding")
    for reply in ("yes", "2", "1"):
        conv.reply(reply)
    assert conv.participant.language == "es"
    assert conv.participant.fields["checkin_time"] == "08:30"
    conv.advance_days(1)
    events = conv.start("daily_checkin")
    assert texts(events)[0].startswith("¡Hola! ¿Cómo se siente hoy?")


def run_simulator(flows: dict[str, Flow], lines: list[str], **kw: object) -> list[str]:
    out: list[str] = []
    sim = Simulator(flows, "daily_checkin", Participant("p", "en", "America/New_York"), T0,
                    catalogs, out=out.append, echo_input=True, **kw)  # type: ignore[arg-type]
    sim.begin()
    sim.run(lines)
    return out


def test_simulator_shows_messages_replies_and_events(flows: dict[str, Flow]) -> None:
    out = run_simulator(flows, ["7", "/events", "yes", "/quit", "never read"])
    assert "bot> Hello! How do you feel today? Reply with a number from 0 to 10. 0 means " \
        "very bad, 10 means very good." in out
    assert "you> 7" in out
    assert "  · answer wellbeing = 7" in out
    assert "you> yes" in out and "  · answer meds = true" not in out  # events hidden
    assert "you> never read" not in out


def test_simulator_commands(flows: dict[str, Flow]) -> None:
    out = run_simulator(flows, ["/now", "/wait 2h", "/day +1", "/state", "/restart",
                                "/wait soon", "/nonsense"])
    assert "-- now Mon 2026-03-02 08:30 EST" in out
    assert "-- now Mon 2026-03-02 10:30 EST" in out
    assert "-- now Tue 2026-03-03 10:30 EST" in out
    assert any('"status": "expired"' in line or '"outcome": "expired"' in line for line in out)
    assert "-- restarted" in out
    assert any(line.startswith("!! `soon` is not a duration") for line in out)
    assert any("/wait 2h" in line and "move the clock" in line for line in out)


def test_simulate_cli_runs_a_script_without_a_terminal(tmp_path: Path) -> None:
    script = tmp_path / "chat.txt"
    script.write_text("# a short check-in\n7\n/wait 2h\nyes\nno\n", encoding="utf-8")
    result = CliRunner().invoke(main, [
        "simulate", "--flow", "daily_checkin", "--lang", "es", "--tz", "America/New_York",
        "--script", str(script), "--flows-dir", str(ROOT / "flows"),
        "--now", "2026-03-02T08:30"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "bot> ¡Hola! ¿Cómo se siente hoy?" in out
    assert "you> 7" in out and "a short check-in" not in out
    assert "bot> No hemos sabido de usted. ¿Tomó hoy su medicamento del estudio?" in out
    assert "bot> ¡Gracias! Eso es todo por hoy. Responda AYUDA si necesita ayuda." in out


def test_simulate_cli_needs_the_flow_params(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--flow", "visit_reminder", "--script",
                                       __file__, "--flows-dir", str(ROOT / "flows")])
    assert result.exit_code == 2 and "--param visit_at=" in result.output


def test_bot_simulate_reads_stdin_when_it_is_not_a_terminal() -> None:
    result = CliRunner().invoke(main, ["simulate", "--flow", "daily_checkin",
                                       "--flows-dir", str(ROOT / "flows")], input="8\n/quit\n")
    assert result.exit_code == 0, result.output
    assert "bot> Hello! How do you feel today?" in result.output
    assert "you> 8" in result.output


def test_flows_test_cli_passes_and_fails_with_file_and_line(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["flows", "test", str(ROOT / "tests" / "transcripts"),
                              "--flows-dir", str(ROOT / "flows")])
    assert ok.exit_code == 0, ok.output
    assert " 0 failed" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("participant: {language: en}\n"
                   "start: {flow: daily_checkin, now: '2026-03-02T08:30:00'}\n"
                   "exchange:\n"
                   "  - expect: [Hi]\n", encoding="utf-8")
    result = runner.invoke(main, ["flows", "test", str(bad), "--flows-dir", str(ROOT / "flows")])
    assert result.exit_code == 1
    assert f"FAIL {bad}" in result.output and f"{bad}:4: message 1 differs" in result.output
    assert "0 passed, 1 failed" in result.output


def test_flows_test_and_simulate_use_flows_dir(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    configured = tmp_path / "study-flows"
    shutil.copytree(ROOT / "flows", configured)
    path = configured / "daily_checkin.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "How do you feel today?", "How are you today?"), encoding="utf-8")
    monkeypatch.setenv("FLOWS_DIR", str(configured))
    runner = CliRunner()
    result = runner.invoke(main, ["simulate", "--flow", "daily_checkin"], input="/quit\n")
    assert result.exit_code == 0, result.output
    assert "How are you today?" in result.output
    tested = runner.invoke(main, ["flows", "test", str(ROOT / "tests" / "transcripts")])
    assert tested.exit_code == 1 and "How are you today?" in tested.output
    given = runner.invoke(main, ["flows", "test", str(ROOT / "tests" / "transcripts"),
                                 "--flows-dir", str(ROOT / "flows")])
    assert given.exit_code == 0, given.output
