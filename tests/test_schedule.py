"""Participant-local scheduling: DST, quiet hours, visit reminders, job ids."""

from __future__ import annotations

import ast
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rq.job import validate_job_id

from bot import schedule
from bot.schedule import (
    QuietHours,
    ReminderOffset,
    ScheduleError,
    advance,
    daily_plan,
    defer,
    job_id,
    local_at,
    next_daily,
    reminder_times,
)

LA = ZoneInfo("America/Los_Angeles")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def la(*args: int, fold: int = 0) -> datetime:
    # In UTC: Python never finds an ambiguous local time equal to a time in another zone.
    return datetime(*args, tzinfo=LA, fold=fold).astimezone(UTC)


# -- local_at ------------------------------------------------------------------------------


def test_local_at_follows_the_utc_offset_of_the_day():
    assert local_at(date(2026, 1, 15), "08:30", "America/Los_Angeles") == utc(2026, 1, 15, 16, 30)
    assert local_at(date(2026, 7, 15), "08:30", LA) == utc(2026, 7, 15, 15, 30)
    assert local_at(date(2026, 7, 15), "08:30", LA).tzinfo is UTC


def test_local_at_in_the_spring_forward_gap_shifts_by_the_gap():
    due = local_at(date(2026, 3, 8), "02:30", LA)
    assert due == utc(2026, 3, 8, 10, 30)
    assert due.astimezone(LA).time() == time(3, 30)


def test_local_at_in_the_fall_back_overlap_takes_the_first_occurrence():
    due = local_at(date(2026, 11, 1), "01:30", LA)
    assert due == utc(2026, 11, 1, 8, 30)  # 01:30 PDT, not 01:30 PST (09:30 UTC)


def test_local_at_half_hour_dst_shift():
    # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 on 2026-10-04.
    due = local_at(date(2026, 10, 4), "02:15", "Australia/Lord_Howe")
    assert due.astimezone(ZoneInfo("Australia/Lord_Howe")).time() == time(2, 45)


@pytest.mark.parametrize("bad", ["24:00", "8.30", "", "12:60", "noon", "0830", " 7:5"])
def test_bad_times_of_day_are_refused_in_plain_words(bad):
    with pytest.raises(ScheduleError, match="not a time of day; write HH:MM"):
        local_at(date(2026, 1, 1), bad, LA)


def test_single_digit_hour_is_accepted():
    assert local_at(date(2026, 1, 1), "8:05", "UTC") == utc(2026, 1, 1, 8, 5)


@pytest.mark.parametrize("bad", ["Mars/Base", "", "../etc/passwd", "PST8PDT/x"])
def test_unknown_zones_are_refused_in_plain_words(bad):
    with pytest.raises(ScheduleError, match="is not a time zone; use an IANA name"):
        local_at(date(2026, 1, 1), "08:00", bad)


# -- next_daily ----------------------------------------------------------------------------


def _year_of_dailies(hhmm: str, zone: str, start: datetime, days: int = 365) -> list[datetime]:
    out, after = [], start
    for _ in range(days):
        after = next_daily(hhmm, zone, after)
        out.append(after)
    return out


def test_daily_0830_los_angeles_across_both_2026_dst_changes():
    dues = _year_of_dailies("08:30", "America/Los_Angeles", utc(2026, 1, 1))
    local = [d.astimezone(LA) for d in dues]
    assert local[0].date() == date(2026, 1, 1)
    assert [x.date() for x in local] == [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert {x.time() for x in local} == {time(8, 30)}
    assert all(d.tzinfo is UTC for d in dues)
    offsets = {x.date(): x.utcoffset() for x in local}
    assert offsets[date(2026, 3, 7)] == timedelta(hours=-8)
    assert offsets[date(2026, 3, 8)] == timedelta(hours=-7)  # first 08:30 after spring forward
    assert offsets[date(2026, 10, 31)] == timedelta(hours=-7)
    assert offsets[date(2026, 11, 1)] == timedelta(hours=-8)  # first 08:30 after fall back
    changes = [b.date() for a, b in zip(local, local[1:], strict=False)
               if a.utcoffset() != b.utcoffset()]
    assert changes == [date(2026, 3, 8), date(2026, 11, 1)]


@pytest.mark.parametrize(
    "zone", ["Australia/Sydney", "Australia/Lord_Howe", "Europe/London", "Asia/Kolkata",
             "America/Santiago", "Africa/Casablanca"],
)
def test_daily_time_is_once_per_local_day_in_other_zones(zone):
    tz = ZoneInfo(zone)
    local = [d.astimezone(tz) for d in _year_of_dailies("09:15", zone, utc(2026, 1, 1))]
    dates = [x.date() for x in local]
    assert len(set(dates)) == 365
    assert all((b - a).days == 1 for a, b in zip(dates, dates[1:], strict=False))
    assert {x.time() for x in local} == {time(9, 15)}


def test_daily_inside_the_gap_fires_once_shifted():
    dues = _year_of_dailies("02:30", "America/Los_Angeles", utc(2026, 3, 7), days=3)
    assert [d.astimezone(LA).replace(tzinfo=None) for d in dues] == [
        datetime(2026, 3, 7, 2, 30), datetime(2026, 3, 8, 3, 30), datetime(2026, 3, 9, 2, 30),
    ]


def test_daily_inside_the_overlap_fires_once_at_the_first_occurrence():
    dues = _year_of_dailies("01:30", "America/Los_Angeles", utc(2026, 10, 31, 12), days=3)
    assert dues == [la(2026, 11, 1, 1, 30), la(2026, 11, 2, 1, 30), la(2026, 11, 3, 1, 30)]
    # A planner woken during the second 01:xx does not fire the day's check-in again.
    assert next_daily("01:30", LA, la(2026, 11, 1, 1, 10, fold=1)) == la(2026, 11, 2, 1, 30)


def test_next_daily_is_strictly_after():
    due = local_at(date(2026, 5, 1), "08:30", LA)
    assert next_daily("08:30", LA, due - timedelta(microseconds=1)) == due
    assert next_daily("08:30", LA, due) == local_at(date(2026, 5, 2), "08:30", LA)


def test_next_daily_in_a_zone_that_skipped_a_day():
    # Samoa skipped 2011-12-30; the check-in must neither repeat nor stall.
    dues = _year_of_dailies("08:00", "Pacific/Apia", utc(2011, 12, 28), days=4)
    apia = ZoneInfo("Pacific/Apia")
    assert [d.astimezone(apia).date() for d in dues] == [
        date(2011, 12, 28), date(2011, 12, 29), date(2011, 12, 31), date(2012, 1, 1),
    ]


def test_naive_datetimes_are_refused():
    with pytest.raises(ScheduleError, match="has no time zone"):
        next_daily("08:30", LA, datetime(2026, 1, 1))
    with pytest.raises(ScheduleError, match="has no time zone"):
        defer(datetime(2026, 1, 1, 22), LA, QuietHours())


# -- daily_plan ----------------------------------------------------------------------------


ZONES = ["America/Los_Angeles", "America/New_York", "Europe/London", "Australia/Sydney",
         "Asia/Kolkata", "Pacific/Auckland", "America/Sao_Paulo", "UTC"]


def test_consecutive_utc_windows_plan_each_local_day_exactly_once():
    people = [(i, hhmm, zone) for i, (hhmm, zone) in enumerate(
        (h, z) for h in ("00:10", "01:30", "02:30", "08:30", "16:00", "23:50") for z in ZONES)]
    seen: dict[int, list[datetime]] = {pid: [] for pid, _, _ in people}
    start = utc(2026, 1, 1)
    for day in range(365):
        lo, hi = start + timedelta(days=day), start + timedelta(days=day + 1)
        for pid, due in daily_plan(people, lo, hi):
            assert lo <= due < hi
            seen[pid].append(due)
    for pid, hhmm, zone in people:
        tz = ZoneInfo(zone)
        dues = seen[pid]
        assert dues == sorted(dues)
        dates = [d.astimezone(tz).date() for d in dues]
        assert len(dates) == len(set(dates)), (hhmm, zone)
        # Every local day fully inside the year appears.
        expected = {date(2026, 1, 2) + timedelta(days=i) for i in range(363)}
        assert expected <= set(dates), (hhmm, zone)


def test_plan_window_is_half_open_and_skips_participants_without_a_time():
    due = local_at(date(2026, 6, 1), "08:30", LA)
    people = [("a", "08:30", "America/Los_Angeles"), ("b", None, "America/Los_Angeles")]
    assert list(daily_plan(people, due, due + timedelta(hours=1))) == [("a", due)]
    assert list(daily_plan(people, due - timedelta(hours=1), due)) == []


def test_a_utc_day_can_hold_two_check_ins_around_dst():
    # 16:00 PST is 00:00 UTC; after spring forward 16:00 PDT is 23:00 UTC the same UTC day.
    people = [(1, "16:00", "America/Los_Angeles")]
    dues = [d for _, d in daily_plan(people, utc(2026, 3, 8), utc(2026, 3, 9))]
    assert dues == [utc(2026, 3, 8, 0), utc(2026, 3, 8, 23)]


def test_plan_names_the_participant_with_a_bad_zone():
    people = [(1, "08:30", "UTC"), (2, "08:30", "Mars/Base")]
    with pytest.raises(ScheduleError, match=r"participant 2: `Mars/Base` is not a time zone"):
        list(daily_plan(people, utc(2026, 1, 1), utc(2026, 1, 2)))


def test_plan_can_skip_bad_rows_and_go_on():
    errors: list[tuple[object, str]] = []
    people = [(1, "25:00", "UTC"), (2, "08:30", "Nowhere"), (3, "08:30", "UTC"),
              (4, "25:00", "UTC")]
    planned = list(daily_plan(people, utc(2026, 1, 1), utc(2026, 1, 2),
                              on_error=lambda pid, exc: errors.append((pid, str(exc)))))
    assert planned == [(3, utc(2026, 1, 1, 8, 30))]
    assert [pid for pid, _ in errors] == [1, 2, 4]
    assert "not a time of day" in errors[0][1]


def test_plan_is_lazy():
    def people():
        yield (1, "08:30", "UTC")
        raise AssertionError("read past what was asked for")

    plan = daily_plan(people(), utc(2026, 1, 1), utc(2026, 1, 2))
    assert next(plan) == (1, utc(2026, 1, 1, 8, 30))


def test_plan_rejects_a_backwards_window():
    with pytest.raises(ScheduleError, match="ends before it starts"):
        list(daily_plan([], utc(2026, 1, 2), utc(2026, 1, 1)))


def test_plan_matches_next_daily_for_random_participants():
    rng = random.Random(7)
    people = [(i, f"{rng.randrange(24):02d}:{rng.randrange(60):02d}", rng.choice(ZONES))
              for i in range(500)]
    lo, hi = utc(2026, 11, 1, 5), utc(2026, 11, 2, 5)
    planned = dict(daily_plan(people, lo, hi))
    for pid, hhmm, zone in people:
        first = next_daily(hhmm, zone, lo - timedelta(microseconds=1))
        if first < hi:
            assert planned[pid] == first
        else:
            assert pid not in planned


# -- quiet hours ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        (la(2026, 6, 1, 22, 0), la(2026, 6, 2, 8, 0)),  # evening -> next morning
        (la(2026, 6, 1, 6, 0), la(2026, 6, 1, 8, 0)),  # early morning -> same morning
        (la(2026, 6, 1, 21, 0), la(2026, 6, 2, 8, 0)),  # the start is quiet
        (la(2026, 6, 1, 0, 0), la(2026, 6, 1, 8, 0)),
        (la(2026, 6, 1, 7, 59, 59), la(2026, 6, 1, 8, 0)),
        (la(2026, 6, 1, 8, 0), la(2026, 6, 1, 8, 0)),  # the end is allowed
        (la(2026, 6, 1, 12, 0), la(2026, 6, 1, 12, 0)),
        (la(2026, 6, 1, 20, 59, 59), la(2026, 6, 1, 20, 59, 59)),
    ],
)
def test_defer_moves_quiet_hours_to_the_next_allowed_start(due, expected):
    assert defer(due.astimezone(UTC), "America/Los_Angeles", QuietHours()) == expected


def test_defer_is_dst_correct():
    # 22:00 PST the night before spring forward -> 08:00 PDT = 15:00 UTC (not 16:00).
    assert defer(la(2026, 3, 7, 22), LA, QuietHours()) == utc(2026, 3, 8, 15)
    # 22:00 PDT the night before fall back -> 08:00 PST = 16:00 UTC.
    assert defer(la(2026, 10, 31, 22), LA, QuietHours()) == utc(2026, 11, 1, 16)
    # 01:30 PST (the second one) is still quiet.
    assert defer(la(2026, 11, 1, 1, 30, fold=1), LA, QuietHours()) == utc(2026, 11, 1, 16)


def test_defer_to_an_end_inside_the_gap():
    quiet = QuietHours(start="21:00", end="02:30")
    assert defer(la(2026, 3, 8, 1, 0), LA, quiet).astimezone(LA) == la(2026, 3, 8, 3, 30)


def test_defer_never_goes_back_in_the_repeated_hour():
    # Quiet until 01:30; at 01:10 PST the first 01:30 (PDT) has already gone by.
    quiet = QuietHours(start="23:00", end="01:30")
    assert defer(la(2026, 11, 1, 1, 10, fold=1), LA, quiet) == la(2026, 11, 1, 1, 30, fold=1)
    assert defer(la(2026, 11, 1, 1, 10), LA, quiet) == la(2026, 11, 1, 1, 30)


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Australia/Lord_Howe", "Europe/London"])
def test_defer_always_lands_later_and_outside_quiet_hours(zone):
    tz = ZoneInfo(zone)
    rng = random.Random(zone)
    for _ in range(3000):
        due = utc(2026, 1, 1) + timedelta(seconds=rng.randrange(365 * 86400))
        start, end = rng.sample([f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)], 2)
        quiet = QuietHours(start, end)
        moved = defer(due, zone, quiet)
        assert moved >= due
        assert not quiet.is_quiet(moved.astimezone(tz).time()), (due, start, end, moved)
        if not quiet.is_quiet(due.astimezone(tz).time()):
            assert moved == due
        back = advance(due, zone, quiet)
        assert back <= due
        assert not quiet.is_quiet(back.astimezone(tz).time()), (due, start, end, back)


def test_urgent_messages_ignore_quiet_hours():
    due = la(2026, 6, 1, 23, 0)
    assert defer(due, LA, QuietHours(), urgent=True) is due


def test_non_wrapping_quiet_window():
    quiet = QuietHours(start="12:00", end="14:00")
    assert not quiet.wraps
    assert defer(la(2026, 6, 1, 13, 0), LA, quiet) == la(2026, 6, 1, 14, 0)
    assert defer(la(2026, 6, 1, 11, 59), LA, quiet) == la(2026, 6, 1, 11, 59)
    assert defer(la(2026, 6, 1, 14, 0), LA, quiet) == la(2026, 6, 1, 14, 0)
    assert defer(la(2026, 6, 1, 23, 0), LA, quiet) == la(2026, 6, 1, 23, 0)


def test_quiet_hours_configuration_errors():
    with pytest.raises(ScheduleError, match="start and end at the same time"):
        QuietHours(start="08:00", end="8:00")
    with pytest.raises(ScheduleError, match="not a time of day"):
        QuietHours(start="9pm")


def test_advance_brings_a_message_forward_to_before_quiet_hours():
    quiet = QuietHours()
    assert advance(la(2026, 6, 2, 5, 0), LA, quiet) == la(2026, 6, 1, 20, 59)
    assert advance(la(2026, 6, 1, 22, 0), LA, quiet) == la(2026, 6, 1, 20, 59)
    assert advance(la(2026, 6, 1, 12, 0), LA, quiet) == la(2026, 6, 1, 12, 0)
    assert advance(la(2026, 6, 1, 13, 0), LA, QuietHours("12:00", "14:00")) == la(
        2026, 6, 1, 11, 59)


def test_advance_when_quiet_hours_begin_inside_the_gap():
    # 02:30 never shows on 2026-03-08: quiet hours begin when the clock jumps at 02:00 PST.
    moved = advance(la(2026, 3, 8, 4, 0), LA, QuietHours("02:30", "06:00"))
    assert moved <= la(2026, 3, 8, 1, 59)
    assert not QuietHours("02:30", "06:00").is_quiet(moved.astimezone(LA).time())


# -- visit reminders -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("-3d@10:00", "-3d@10:00"),
        (" -3D @ 10:00 ", "-3d@10:00"),
        ("-1d@18:00", "-1d@18:00"),
        ("-2h", "-2h"),
        ("-90m", "-90m"),
        ("-1h30m", "-1h30m"),
        ("-1d", "-1d"),
        ("-0d@8:00", "-0d@08:00"),
        ("+1d@09:00", "+1d@09:00"),
        ("-03d@10:00", "-3d@10:00"),
    ],
)
def test_offsets_parse_to_stable_keys(text, key):
    assert ReminderOffset.parse(text).key == key


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("3d@10:00", "is not a reminder offset; write it like -3d@10:00"),
        ("", "is not a reminder offset"),
        ("-3x", "is not a reminder offset"),
        ("-@10:00", "is not a reminder offset"),
        ("-2h-1d", "is not a reminder offset"),
        ("-1d2h@10:00", "goes with whole days only"),
        ("-1d@25:00", "`25:00` is not a time of day"),
        ("-1d@", "is not a time of day"),
        ("-0h", "is zero"),
    ],
)
def test_offset_errors_say_what_to_write(text, words):
    with pytest.raises(ScheduleError, match=words.replace("(", r"\(")):
        ReminderOffset.parse(text)


def test_offset_instants():
    visit = la(2026, 3, 10, 9, 0)
    assert ReminderOffset.parse("-3d@10:00").when(visit, LA) == la(2026, 3, 7, 10, 0)
    assert ReminderOffset.parse("-1d@18:00").when(visit, LA) == la(2026, 3, 9, 18, 0)
    assert ReminderOffset.parse("-2h").when(visit, LA) == la(2026, 3, 10, 7, 0)
    assert ReminderOffset.parse("+1d@09:00").when(visit, LA) == la(2026, 3, 11, 9, 0)


def test_days_are_calendar_days_and_hours_are_elapsed_across_dst():
    visit = la(2026, 3, 8, 9, 0)  # the morning after spring forward: 23 h since 09:00 PST
    assert ReminderOffset.parse("-1d").when(visit, LA) == la(2026, 3, 7, 9, 0)
    assert ReminderOffset.parse("-24h").when(visit, LA) == la(2026, 3, 7, 8, 0)
    assert ReminderOffset.parse("-1d2h").when(visit, LA) == la(2026, 3, 7, 7, 0)


def test_reminder_times_skip_the_past_and_come_soonest_first():
    visit = la(2026, 6, 10, 9, 0)
    offsets = ["-1d@18:00", "-3d@10:00", "-2h"]
    now = la(2026, 6, 8, 12, 0)  # after the -3d reminder
    assert reminder_times(visit, LA, offsets, now) == [
        ("-1d@18:00", la(2026, 6, 9, 18, 0)),
        ("-2h", la(2026, 6, 10, 7, 0)),
    ]
    assert [k for k, _ in reminder_times(visit, LA, offsets, la(2026, 6, 1))] == [
        "-3d@10:00", "-1d@18:00", "-2h"]
    due_now = la(2026, 6, 10, 7, 0)
    assert reminder_times(visit, LA, ["-2h"], due_now) == [("-2h", due_now)]
    assert reminder_times(visit, LA, offsets, visit) == []


def test_reminder_times_drop_duplicates_and_reminders_after_the_visit():
    visit = la(2026, 6, 10, 9, 0)
    now = la(2026, 6, 1)
    offsets = ["-1d", " -1D ", "-24h", ReminderOffset.parse("-0d@10:00")]
    assert reminder_times(visit, LA, offsets, now) == [("-1d", la(2026, 6, 9, 9, 0))]


def test_reminder_times_respect_quiet_hours_without_landing_after_the_visit():
    quiet = QuietHours()
    now = la(2026, 6, 1)
    # 05:00 is quiet; 08:00 would be after a 07:00 visit, so the evening before instead.
    assert reminder_times(la(2026, 6, 10, 7, 0), LA, ["-2h"], now, quiet) == [
        ("-2h", la(2026, 6, 9, 20, 59))]
    # For a 10:00 visit deferring to 08:00 is fine.
    assert reminder_times(la(2026, 6, 10, 10, 0), LA, ["-1d@22:00"], now, quiet) == [
        ("-1d@22:00", la(2026, 6, 10, 8, 0))]
    # Without quiet hours the time is used as configured.
    assert reminder_times(la(2026, 6, 10, 7, 0), LA, ["-2h"], now) == [
        ("-2h", la(2026, 6, 10, 5, 0))]


def test_reminder_times_parse_errors_propagate():
    with pytest.raises(ScheduleError, match="not a reminder offset"):
        reminder_times(la(2026, 6, 10, 9), LA, ["tomorrow"], la(2026, 6, 1))


# -- job ids -------------------------------------------------------------------------------


def test_job_ids_are_rq_safe_and_stable():
    rng = random.Random(3)
    alphabet = "aZ9_-:@+ /.éß漢\n"
    for _ in range(500):
        parts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
                 for _ in range(rng.randrange(1, 4))]
        made = job_id(*parts)
        validate_job_id(made)  # raises if RQ would refuse it
        assert made == job_id(*parts)
        assert len(made) <= 200


def test_job_ids_keep_simple_parts_readable():
    assert job_id("nudge", 42, "checkin") == "nudge_42_checkin"
    made = job_id("reminder", "visit:12:-3d@10:00")
    assert made.startswith("reminder_visit-12-3d-10-00-")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("a-b", "c"), ("a", "b-c")),
        (("a_b", "c"), ("a", "b_c")),
        (("visit:12:-3d@10:00",), ("visit-12--3d-10-00",)),
        (("x", ""), ("x",)),
        ((1,), ("1", "")),
        (("a" * 300,), ("a" * 301,)),
    ],
)
def test_different_parts_give_different_ids(a, b):
    assert job_id(*a) != job_id(*b)


def test_job_id_needs_a_part():
    with pytest.raises(ScheduleError):
        job_id()


# -- purity --------------------------------------------------------------------------------


def test_schedule_module_does_no_io_and_reads_no_clock():
    tree = ast.parse(Path(schedule.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom)
                for alias in (node.names if isinstance(node, ast.Import) else [node])
                if isinstance(alias, ast.alias)}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "hashlib", "re", "collections", "dataclasses",
                        "datetime", "functools", "typing", "zoneinfo"}
    called = {node.func.attr for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert not called & {"now", "utcnow", "today", "time_ns", "monotonic", "open"}
