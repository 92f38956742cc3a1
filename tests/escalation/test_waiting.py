"""Escalations that cannot be paged at once: a routine one outside business hours waits for
them, and one with nobody on call waits for someone; the periodic check (on its own or in
the scheduler's tick) pages each of them exactly once when it can. Times are explicit."""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis

from bot import escalation, navigators
from bot.cli import main
from bot.config import Settings
from bot.engine.roster import read_roster_text
from bot.store.db import session_scope
from bot.store.models import Escalation, Message, Participant
from workers.scheduler import Scheduler

from .conftest import ROSTER, alerts, enrol, escalations, outbound, trail

NY = "America/New_York"
# November 2026 in New York is UTC-5: Friday 27th 23:00 there is Saturday 04:00 UTC.
FRI_23 = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
MON_09 = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
TUE_09 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
TUE_10 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def raise_(settings: Settings, p: Participant, now: datetime, severity: str,
           reason: str = "chest_pain") -> Escalation:
    with session_scope(settings.database_url) as db:
        found = db.get(Participant, p.id)
        assert found is not None
        return escalation.raise_escalation(db, found, severity=severity, reason=reason,
                                           source="flow", settings=settings, now=now)


def check(settings: Settings, now: datetime) -> escalation.CheckResult:
    return escalation.check_escalations(settings, now)


def steps(url: str, code: str) -> list[tuple[str, dict[str, object]]]:
    return [(e.action, json.loads(e.new_json or "{}")) for e in trail(url, code)]


def set_study(settings: Settings, text: str) -> None:
    study = Path(settings.flows_dir) / "study.yaml"
    study.write_text(text, encoding="utf-8")
    future = time.time() + 5  # a new mtime: the cached policy is read again
    os.utime(study, (future, future))


def unrouted_lines(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records
               if r.getMessage() == "escalation_unrouted" and r.levelname == "CRITICAL")


# ---- routine escalations wait for business hours ---------------------------------------------


def test_routine_at_friday_night_is_paged_monday_at_nine_once(
        esc_settings: Settings, roster: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    url = esc_settings.database_url
    esc = raise_(esc_settings, enrol(url), FRI_23, "routine")
    # Ana is on call around the clock, but a routine escalation does not wake her.
    assert (esc.state, esc.level, esc.next_alert_at) == ("open", 0, MON_09)
    assert alerts(url) == [] and outbound(url) == []
    trail_so_far = steps(url, esc.code)
    assert [a for a, _ in trail_so_far] == ["escalation.raised", "escalation.deferred"]
    assert trail_so_far[1][1] == {"level": 0, "until": MON_09.isoformat(),
                                  "why": "business hours"}
    assert any(r.getMessage() == "escalation_deferred" for r in caplog.records)

    for when in (FRI_23 + timedelta(minutes=15), MON_09 - timedelta(days=1),
                 MON_09 - timedelta(seconds=1)):
        result = check(esc_settings, when)
        assert (result.paged, result.climbed) == ([], [])
    assert alerts(url) == []

    first = check(esc_settings, MON_09 + timedelta(seconds=5))
    assert first.paged == [esc.code] and first.emails.sent == 1
    assert alerts(url) == [(0, "ana", "sms", "queued"), (0, "ana", "email", "sent")]
    # Acknowledge within "next business day" counts from the page: Tuesday 09:00.
    paged = escalations(url)[0]
    assert (paged.level, paged.next_alert_at) == (0, TUE_09 + timedelta(seconds=5))
    for seconds in (20, 35, 3600):
        assert check(esc_settings, MON_09 + timedelta(seconds=seconds)).paged == []
    assert len(alerts(url)) == 2
    assert len(outbound(url, Message.kind == "alert")) == 1
    # Nobody acknowledges: the climb goes on from the page's deadline.
    assert check(esc_settings, TUE_09 + timedelta(seconds=6)).climbed == [esc.code]
    assert [a for a, _ in steps(url, esc.code)].count("escalation.deferred") == 1
    # The participant hears nothing, as before: routine sends no safety message.
    assert outbound(url, Message.kind == "safety") == []


@pytest.mark.parametrize("severity", ["urgent", "high"])
def test_urgent_and_high_at_friday_night_page_at_once(
        esc_settings: Settings, roster: None, severity: str) -> None:
    url = esc_settings.database_url
    esc = raise_(esc_settings, enrol(url), FRI_23, severity)
    assert alerts(url) == [(0, "ana", "sms", "queued"), (0, "ana", "email", "pending")]
    wait = {"urgent": timedelta(minutes=10), "high": timedelta(minutes=30)}[severity]
    assert esc.next_alert_at == FRI_23 + wait
    assert "escalation.deferred" not in [a for a, _ in steps(url, esc.code)]


def test_routine_in_business_hours_pages_at_once(esc_settings: Settings,
                                                 roster: None) -> None:
    url = esc_settings.database_url
    esc = raise_(esc_settings, enrol(url), TUE_10, "routine")
    assert alerts(url)[0] == (0, "ana", "sms", "queued")
    assert esc.next_alert_at == TUE_10 + timedelta(days=1)


def test_a_routine_climb_also_waits_for_business_hours(esc_settings: Settings,
                                                       roster: None) -> None:
    url = esc_settings.database_url
    set_study(esc_settings, "escalation:\n  acknowledge_within: {routine: 8h}\n")
    fri_16 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    esc = raise_(esc_settings, enrol(url), fri_16, "routine")
    assert esc.next_alert_at == fri_16 + timedelta(hours=8)  # Saturday 00:00
    climb = check(esc_settings, fri_16 + timedelta(hours=8, seconds=1))
    assert climb.climbed == [] and escalations(url)[0].next_alert_at == MON_09
    assert [a[0] for a in alerts(url)] == [0, 0]
    monday = check(esc_settings, MON_09)
    assert monday.paged == [esc.code]
    assert [a[:3] for a in alerts(url)][2:] == [(1, "ana", "sms"), (1, "ana", "email")]
    climbed = [d for a, d in steps(url, esc.code) if a == "escalation.climbed"]
    assert climbed == [{"from": 0, "to": 1, "skipped": 0}]
    assert escalations(url)[0].next_alert_at == MON_09 + timedelta(hours=8)


def test_an_urgent_repeat_of_a_held_routine_escalation_pages_at_once(
        esc_settings: Settings, roster: None) -> None:
    url = esc_settings.database_url
    p = enrol(url)
    esc = raise_(esc_settings, p, FRI_23, "routine")
    assert alerts(url) == []
    later = FRI_23 + timedelta(hours=2)
    again = raise_(esc_settings, p, later, "urgent")
    assert (again.code, again.severity, again.repeats) == (esc.code, "urgent", 1)
    assert [a[:3] for a in alerts(url)] == [(0, "ana", "sms"), (0, "ana", "email")]
    assert again.next_alert_at == later + timedelta(minutes=10)
    assert len(outbound(url, Message.kind == "safety")) == 1
    assert check(esc_settings, later + timedelta(seconds=15)).paged == []


def test_business_hours_and_days_come_from_study_yaml(esc_settings: Settings,
                                                      roster: None) -> None:
    url = esc_settings.database_url
    set_study(esc_settings, "escalation:\n  business_hours: \"08:00-12:00\"\n"
                            "  business_days: mon-sat\n")
    esc = raise_(esc_settings, enrol(url), FRI_23, "routine")
    sat_08 = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    assert esc.next_alert_at == sat_08
    assert check(esc_settings, sat_08).paged == [esc.code]
    # The next business day after Saturday is Monday: Sunday is not one.
    assert escalations(url)[0].next_alert_at == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    # Saturday 12:00 is after hours again: a new routine escalation waits for Monday.
    other = raise_(esc_settings, enrol(url, phone="+16175550102", code="P002"),
                   sat_08 + timedelta(hours=4), "routine")
    assert other.next_alert_at == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)


# ---- nobody on call: retried on every check, shouted about hourly ------------------------------


def put_on_call(settings: Settings, *, primary: str | None = None,
                backup: str | None = None, start: str = "00:00", end: str = "24:00",
                days: str = "daily") -> None:
    """The test roster's navigators, with one window (no coordinator)."""
    text = ROSTER.split("coordinator:")[0] + "on_call:\n" + f"  - days: {days}\n" \
        f"    from: \"{start}\"\n    to: \"{end}\"\n"
    text += f"    primary: {primary}\n" if primary else ""
    text += f"    backup: {backup}\n" if backup else ""
    loaded, _problems = read_roster_text(text, "roster.yaml")
    assert loaded is not None
    with session_scope(settings.database_url) as db:
        navigators.replace_roster(db, loaded, actor="staff:test")


def test_unrouted_is_paged_when_a_window_starts_once_and_logged_hourly(
        esc_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    url = esc_settings.database_url
    put_on_call(esc_settings, primary="ana", start="11:30", end="18:00")  # nobody at 10:00
    esc = raise_(esc_settings, enrol(url), TUE_10, "urgent")
    assert (esc.state, esc.level) == ("open", 0) and alerts(url) == []
    assert unrouted_lines(caplog) == 1
    # Check after check for almost an hour: retried, still nobody, no new line.
    for seconds in range(15, 3600, 45):
        assert check(esc_settings, TUE_10 + timedelta(seconds=seconds)).paged == []
    assert unrouted_lines(caplog) == 1
    assert check(esc_settings, TUE_10 + timedelta(hours=1)).paged == []
    assert unrouted_lines(caplog) == 2  # an hour on: said again, and in the trail
    assert check(esc_settings, TUE_10 + timedelta(hours=1, minutes=29)).paged == []
    assert unrouted_lines(caplog) == 2

    # Ana's window begins at 11:30: the next check pages her, at level 0, exactly once.
    at_1130 = TUE_10 + timedelta(hours=1, minutes=30, seconds=5)
    result = check(esc_settings, at_1130)
    assert result.paged == [esc.code] and result.climbed == []
    for seconds in (15, 30, 300):
        assert check(esc_settings, at_1130 + timedelta(seconds=seconds)).paged == []
    assert alerts(url) == [(0, "ana", "sms", "queued"), (0, "ana", "email", "sent")]
    assert len(outbound(url, Message.kind == "alert")) == 1
    assert unrouted_lines(caplog) == 2
    # Her ten minutes count from the page, not from the raise.
    assert escalations(url)[0].next_alert_at == at_1130 + timedelta(minutes=10)
    assert [a for a, _ in steps(url, esc.code)] == [
        "escalation.raised", "escalation.unrouted", "escalation.safety_message",
        "escalation.unrouted", "escalation.alerted", "escalation.alerted"]
    assert check(esc_settings, at_1130 + timedelta(minutes=10, seconds=1)).climbed == \
        [esc.code]


def test_an_unrouted_climb_goes_to_the_level_someone_covers(esc_settings: Settings) -> None:
    url = esc_settings.database_url
    put_on_call(esc_settings, primary="ana", start="10:00", end="10:05")
    esc = raise_(esc_settings, enrol(url), TUE_10, "urgent")
    assert [a[:2] for a in alerts(url)] == [(0, "ana"), (0, "ana")]
    # Ten minutes on, ana's window is over and there is no backup, no coordinator.
    assert check(esc_settings, TUE_10 + timedelta(minutes=10)).climbed == []
    stuck = escalations(url)[0]
    assert (stuck.level, len(alerts(url))) == (1, 2)
    assert ("escalation.unrouted", {"level": 1}) in steps(url, esc.code)
    # Ben is made backup from 10:20: the climb reaches him at level 2, skipping level 1.
    with session_scope(url) as db:
        navigators.add_window(db, actor="staff:test", name="ben", role="backup",
                              days="daily", start="10:20", end="24:00")
    assert check(esc_settings, TUE_10 + timedelta(minutes=19)).paged == []
    assert check(esc_settings, TUE_10 + timedelta(minutes=20)).paged == [esc.code]
    assert check(esc_settings, TUE_10 + timedelta(minutes=21)).paged == []
    assert [a[:3] for a in alerts(url)][2:] == [(2, "ben", "sms"), (2, "ben", "email")]
    climbed = [d for a, d in steps(url, esc.code) if a == "escalation.climbed"]
    assert climbed == [{"from": 0, "to": 2, "skipped": 1}]


def test_the_scheduler_tick_pages_when_the_roster_is_fixed_with_bot_navigators(
        esc_settings: Settings, redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    url = esc_settings.database_url
    esc = raise_(esc_settings, enrol(url), TUE_10, "high")  # no roster at all
    scheduler = Scheduler(esc_settings, redis, sweep=False)

    def paged(minutes: int) -> list[str]:
        tick = scheduler.tick(TUE_10 + timedelta(minutes=minutes))
        assert tick.errors == [] and tick.escalations is not None
        return tick.escalations.paged

    assert paged(1) == [] and paged(2) == []
    assert unrouted_lines(caplog) == 1

    def bot(*args: str) -> None:
        result = CliRunner().invoke(main, list(args), obj=esc_settings)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.output
    bot("navigators", "add", "ana", "--phone", "+16175550150", "--channels", "sms")
    bot("navigators", "oncall", "ana", "--days", "daily", "--from", "00:00", "--to", "24:00",
        "--timezone", NY)
    assert paged(3) == [esc.code] and paged(4) == []
    assert alerts(url) == [(0, "ana", "sms", "queued")]
    assert escalations(url)[0].next_alert_at == TUE_10 + timedelta(minutes=33)
    assert any(r.getMessage() == "escalations_checked" and getattr(r, "fields", {})
               .get("paged") == 1 for r in caplog.records)


def test_checks_running_side_by_side_page_an_unrouted_escalation_once(
        esc_settings: Settings) -> None:
    url = esc_settings.database_url
    esc = raise_(esc_settings, enrol(url), TUE_10, "urgent")  # no roster at all
    put_on_call(esc_settings, primary="ana")
    when = TUE_10 + timedelta(minutes=1)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: check(esc_settings, when), range(8)))
    assert sum(len(r.paged) for r in results) == 1
    assert [a[:3] for a in alerts(url)] == [(0, "ana", "sms"), (0, "ana", "email")]
    assert len(outbound(url, Message.kind == "alert")) == 1
    assert [a for a, _ in steps(url, esc.code)].count("escalation.alerted") == 2
