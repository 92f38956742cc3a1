"""The on-call roster and the escalation policy (pure), and `bot flows check` on them."""

from __future__ import annotations

import shutil
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.engine.check import check_paths
from bot.engine.roster import (
    Deadline,
    EscalationPolicy,
    NavigatorSpec,
    Roster,
    RosterError,
    Window,
    describe_gaps,
    load_policy,
    parse_clock,
    parse_days,
    read_roster_text,
    roster_problems,
    uncovered,
)

ROOT = Path(__file__).resolve().parents[2]

NAVIGATORS = """\
    timezone: America/New_York
    navigators:
      - name: ana
        phone: "+16175550150"
        email: ana@example.org
        channels: [sms, email]
      - name: ben
        phone: "+16175550151"
      - name: dana
        phone: "+16175550153"
    coordinator: dana
    """


def roster(on_call: str, navigators: str = NAVIGATORS) -> tuple[Roster | None, list]:
    text = textwrap.dedent(navigators) + textwrap.dedent(on_call)
    return read_roster_text(text, "roster.yaml")


def codes(problems: list) -> list[str]:
    return sorted(p.code for p in problems)


ALL_WEEK = """\
    on_call:
      - days: daily
        from: "00:00"
        to: "24:00"
        primary: ana
        backup: ben
    """


def test_a_full_week_has_no_problems() -> None:
    r, problems = roster(ALL_WEEK)
    assert problems == [] and r is not None
    assert [n.name for n in r.coordinators] == ["dana"]
    assert r.by_name["ana"].channels == ("sms", "email")


def test_the_shipped_roster_passes() -> None:
    text = (ROOT / "flows" / "roster.yaml").read_text(encoding="utf-8")
    r, problems = read_roster_text(text, "flows/roster.yaml")
    assert problems == [] and r is not None
    assert uncovered(r, "primary") == {} and uncovered(r, "backup") == {}


def test_an_hour_with_no_one_on_call_is_an_error_naming_it() -> None:
    _, problems = roster("""\
        on_call:
          - days: mon-fri
            from: "08:00"
            to: "20:00"
            primary: ana
            backup: ben
          - days: mon-fri
            from: "20:00"
            to: "08:00"
            primary: ben
            backup: ana
        """)
    (gap,) = [p for p in problems if p.code == "roster_gap"]
    assert gap.level == "error"
    # Friday night's window runs to Saturday 08:00; Monday 00:00-08:00 has nobody.
    assert "Mon 00:00-08:00" in gap.message
    assert "Sat 08:00-24:00" in gap.message and "Sun all day" in gap.message
    assert "America/New_York" in gap.message
    assert gap.line == 12  # the `on_call:` line


def test_backup_gaps_are_a_warning() -> None:
    _, problems = roster("""\
        on_call:
          - days: daily
            primary: ana
          - days: mon-fri
            from: "09:00"
            to: "17:00"
            backup: ben
        """)
    (gap,) = problems
    assert (gap.code, gap.level) == ("backup_gap", "warning")
    assert "Mon-Fri 00:00-09:00, 17:00-24:00; Sat, Sun all day" in gap.message


@pytest.mark.parametrize(("change", "code"), [
    ('    channels: [sms, pager]\n', "bad_channel"),
    ('    channels: [email]\n', "bad_channel"),  # no email address for ben
    ('    phone: "12345"\n', "bad_phone"),
])
def test_navigator_mistakes(change: str, code: str) -> None:
    navigators = textwrap.dedent(NAVIGATORS).replace('    phone: "+16175550151"\n', change)
    if "phone" not in change:
        navigators = navigators.replace("  - name: ben\n", '  - name: ben\n    phone: '
                                        '"+16175550151"\n')
    _, problems = roster(ALL_WEEK, navigators)
    assert code in codes(problems)
    assert any("ben" in p.message for p in problems)


def test_unknown_channel_suggests_one() -> None:
    navigators = textwrap.dedent(NAVIGATORS).replace("[sms, email]", "[sms, emial]")
    _, problems = roster(ALL_WEEK, navigators)
    (p,) = problems
    assert p.code == "bad_channel" and "did you mean `email`?" in p.message


def test_unknown_navigator_in_a_window() -> None:
    _, problems = roster(ALL_WEEK.replace("primary: ana", "primary: anna"))
    assert "unknown_navigator" in codes(problems)
    assert any(p.suggestion == "did you mean `ana`?" for p in problems)


def test_no_coordinator_and_duplicate_phone() -> None:
    navigators = textwrap.dedent(NAVIGATORS).replace("coordinator: dana\n", "").replace(
        "+16175550153", "+16175550151")
    _, problems = roster(ALL_WEEK, navigators)
    assert codes(problems) == ["duplicate_phone", "no_coordinator"]


def test_whatsapp_only_is_a_warning() -> None:
    navigators = textwrap.dedent(NAVIGATORS).replace(
        "  - name: ben\n", "  - name: ben\n    channels: [whatsapp]\n")
    _, problems = roster(ALL_WEEK, navigators)
    assert [(p.code, p.level) for p in problems] == [("whatsapp_only", "warning")]


def test_bad_times_and_days() -> None:
    _, problems = roster(ALL_WEEK.replace('"24:00"', '"25:00"'))
    assert "bad_window" in codes(problems)
    _, problems = roster(ALL_WEEK.replace("daily", "mon-fry"))
    assert "bad_window" in codes(problems)


# ---- the values --------------------------------------------------------------------------


def test_days_and_clocks() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days(["sat", "Sunday"]) == frozenset({5, 6})
    assert parse_days("weekends") == frozenset({5, 6})
    assert parse_clock("08:30") == 510 and parse_clock("24:00") == 1440
    assert parse_clock(1200) == 1200  # YAML 1.1 read an unquoted 20:00 as 1200
    with pytest.raises(RosterError):
        parse_clock(8)
    with pytest.raises(RosterError):
        parse_days("someday")


def test_on_call_across_midnight_and_time_zones() -> None:
    r = Roster("America/New_York",
               (NavigatorSpec("ana", phone="+16175550150"),
                NavigatorSpec("ben", phone="+16175550151"),
                NavigatorSpec("dana", phone="+16175550153", coordinator=True)),
               (Window("ana", "primary", frozenset(range(5)), 8 * 60, 20 * 60),
                Window("ben", "primary", frozenset(range(5)), 20 * 60, 8 * 60),
                Window("ben", "backup", frozenset(range(7)), 0, 1440)))
    # Tuesday 2026-11-24 14:00 UTC is 09:00 in New York.
    tue_9 = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert [n.name for n in r.on_call("primary", tue_9)] == ["ana"]
    # Saturday 03:00 local: Friday night's window still runs.
    sat_3 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert [n.name for n in r.on_call("primary", sat_3)] == ["ben"]
    # Saturday 10:00 local: nobody primary; the chain goes on to the backup.
    sat_10 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    assert r.recipients(0, sat_10) == () and [n.name for n in r.recipients(2, sat_10)] == ["ben"]
    assert [n.name for n in r.recipients(3, sat_10)] == ["dana"]
    problems = roster_problems(r)
    assert [p.code for p in problems] == ["roster_gap"]
    assert "Mon 00:00-08:00; Sat 08:00-24:00; Sun all day" in problems[0].message


def test_describe_gaps_groups_days() -> None:
    gaps = {0: [(0, 480)], 1: [(0, 480)], 5: [(0, 1440)], 6: [(0, 1440)]}
    assert describe_gaps(gaps) == "Mon, Tue 00:00-08:00; Sat, Sun all day"


def test_deadlines() -> None:
    policy = EscalationPolicy()
    fri = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # Friday 15:00 in New York
    assert policy.deadline("urgent").after(fri) == fri + timedelta(minutes=10)
    assert policy.deadline("high").after(fri) == fri + timedelta(minutes=30)
    # Routine: the same local time on the next business day, Monday.
    assert policy.deadline("routine").after(fri, "America/New_York") == \
        datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    assert Deadline(None).describe() == "next business day"


def test_deadline_keeps_the_wall_clock_across_dst() -> None:
    # Friday 2026-03-06 10:00 EST; Monday 2026-03-09 10:00 is EDT (one hour earlier in UTC).
    fri = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
    assert Deadline(None).after(fri, "America/New_York") == datetime(2026, 3, 9, 14, 0,
                                                                     tzinfo=UTC)


# ---- study.yaml and the folder check -------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_routine_pages_wait_for_business_hours() -> None:
    policy = EscalationPolicy()  # 09:00-17:00, Monday to Friday
    ny = "America/New_York"
    fri_23 = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # Friday 23:00 in New York
    mon_09 = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    assert policy.page_at("routine", fri_23, ny) == mon_09
    assert policy.page_at("urgent", fri_23, ny) == fri_23
    assert policy.page_at("high", fri_23, ny) == fri_23
    assert policy.page_at("routine", mon_09 - timedelta(minutes=1), ny) == mon_09
    assert policy.page_at("routine", mon_09, ny) == mon_09
    five_pm = mon_09 + timedelta(hours=8)
    assert policy.page_at("routine", five_pm - timedelta(seconds=1), ny) == \
        five_pm - timedelta(seconds=1)
    assert policy.page_at("routine", five_pm, ny) == mon_09 + timedelta(days=1)
    # Across the change to daylight time: Monday 09:00 EDT is 13:00 UTC.
    sat = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    assert policy.page_at("routine", sat, ny) == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    # The same moment elsewhere: Saturday 01:00 in Tokyo is after hours too.
    assert policy.page_at("routine", datetime(2026, 11, 27, 16, 0, tzinfo=UTC),
                          "Asia/Tokyo") == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def test_policy_from_study_yaml(tmp_path: Path) -> None:
    write(tmp_path, "study.yaml", """\
        escalation:
          emergency_number: "112"
          acknowledge_within: {urgent: 5m, high: 1h, routine: 24h}
          safety_message_when_opted_out: true
          business_hours: "8:30-18:00"
          business_days: [mon, tue, wed, thu, fri, sat]
        """)
    policy, problems = load_policy(tmp_path)
    assert problems == []
    assert policy.emergency == "112" and policy.safety_message_when_opted_out
    assert policy.deadline("urgent").delta == timedelta(minutes=5)
    assert policy.deadline("routine").delta == timedelta(hours=24)
    assert policy.business_hours == (8 * 60 + 30, 18 * 60)
    assert policy.business_days == frozenset(range(6))
    defaults, _ = load_policy(ROOT / "flows")
    assert defaults.business_hours == (9 * 60, 17 * 60)
    assert defaults.business_days == frozenset(range(5))


def test_policy_mistakes(tmp_path: Path) -> None:
    write(tmp_path, "study.yaml", """\
        escalation:
          emergency_number: call someone
          acknowledge_within: {urgent: soon, critical: 5m}
          safety_message_when_opted_out: sometimes
          page_everybody: true
          business_hours: "17:00-09:00"
          business_days: mon-fry
        """)
    policy, problems = load_policy(tmp_path)
    assert sorted((p.code, p.line) for p in problems) == [
        ("bad_escalation", 2), ("bad_escalation", 3), ("bad_escalation", 3),
        ("bad_escalation", 4), ("bad_escalation", 6), ("bad_escalation", 7),
        ("unknown_key", 5)]
    assert policy == EscalationPolicy()


@pytest.mark.parametrize(("value", "says"), [
    ('"17:00-09:00"', "must end after it starts"),
    ('"09:00-09:00"', "must end after it starts"),
    ('"nine to five"', "is not a span of hours"),
    ("9", "is not a span of hours"),
    ('"09:00-25:00"', "`25:00` is not a time of day"),
])
def test_flows_check_names_the_file_and_line_of_bad_business_hours(
        study: Path, value: str, says: str) -> None:
    path = study / "study.yaml"
    text = path.read_text(encoding="utf-8")
    assert 'business_hours: "09:00-17:00"' in text
    path.write_text(text.replace('"09:00-17:00"', value), encoding="utf-8")
    line = next(i for i, row in enumerate(path.read_text("utf-8").splitlines(), 1)
                if row.lstrip().startswith("business_hours:"))
    exit_code, output = run_cli(str(study))
    assert exit_code == 1
    assert f"{path}:{line}: error: `escalation.business_hours`: " in output
    assert says in output


def test_flows_check_refuses_bad_business_days(study: Path) -> None:
    path = study / "study.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "business_days: mon-fri", "business_days: weekdayz"), encoding="utf-8")
    (problem,) = check_paths([study])
    assert (problem.code, problem.level, problem.path) == ("bad_escalation", "error",
                                                           str(path))
    assert "`escalation.business_days`: `weekdayz` is not a day" in problem.message


@pytest.fixture
def study(tmp_path: Path) -> Path:
    for name in ("symptom_questionnaire.yaml", "study.yaml", "roster.yaml"):
        shutil.copy(ROOT / "flows" / name, tmp_path / name)
    return tmp_path


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["flows", "check", *args])
    return result.exit_code, result.output


def test_flows_check_reads_the_roster(study: Path) -> None:
    assert check_paths([study]) == []
    text = (study / "roster.yaml").read_text(encoding="utf-8")
    (study / "roster.yaml").write_text(text.replace("days: sat-sun ", "days: sat "),
                                       encoding="utf-8")
    problems = check_paths([study])
    assert [(p.code, p.path) for p in problems] == [
        ("backup_gap", str(study / "roster.yaml")), ("roster_gap", str(study / "roster.yaml"))]
    exit_code, output = run_cli(str(study))
    assert exit_code == 1
    assert "no one is on call (America/New_York): Sun 08:00-20:00" in output
    # The roster file on its own is checked too, and is never read as a flow.
    exit_code, output = run_cli(str(study / "roster.yaml"))
    assert exit_code == 1 and "Sun 08:00-20:00" in output and "step" not in output


def test_flows_check_refuses_an_escalation_with_an_unknown_severity(study: Path) -> None:
    path = study / "symptom_questionnaire.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("severity: urgent",
                                                             "severity: critical"),
                    encoding="utf-8")
    exit_code, output = run_cli(str(study))
    assert exit_code == 1 and "critical" in output


def test_a_roster_without_an_emergency_number_warns(study: Path) -> None:
    (study / "study.yaml").unlink()
    problems = check_paths([study])
    assert [(p.code, p.level) for p in problems] == [("no_emergency_number", "warning")]


def test_a_folder_without_a_roster_is_fine(study: Path) -> None:
    (study / "roster.yaml").unlink()
    assert check_paths([study]) == []
