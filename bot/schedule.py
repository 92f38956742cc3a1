"""When nudges go out: participant-local times, quiet hours, visit reminders, job ids.

Pure functions over aware datetimes and IANA zones. Nothing here reads the clock, talks to
Redis or the database: callers pass `now`. (The only input is the tz database itself, which
`zoneinfo` loads once per zone.)

Local times that do not exist or happen twice follow PEP 495's `fold=0`, the same rule the
rest of the code uses when it turns a wall time into an instant:

- in the spring-forward gap a wall time is shifted forward by the gap's length: 02:30 on
  2026-03-08 in America/Los_Angeles becomes 03:30 PDT;
- in the fall-back overlap the first occurrence wins: 01:30 on 2026-11-01 is 01:30 PDT, and
  a daily 01:30 check-in does not fire again at 01:30 PST.

Every datetime argument must be aware; every computed result is in UTC.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "QuietHours",
    "ReminderOffset",
    "ScheduleError",
    "Zone",
    "advance",
    "as_zone",
    "daily_plan",
    "defer",
    "job_id",
    "local_at",
    "next_daily",
    "parse_hhmm",
    "reminder_times",
]

#: A zone: an IANA name ("America/Los_Angeles") or a tzinfo that follows PEP 495.
Zone = str | tzinfo

K = TypeVar("K")

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_OFFSET = re.compile(
    r"^(?P<sign>[+-])(?:(?P<d>\d{1,4})d)?(?:(?P<h>\d{1,5})h)?(?:(?P<m>\d{1,6})m)?"
    r"(?:@(?P<at>[^@]*))?$"
)
_JOB_ID_SAFE = re.compile(r"^[A-Za-z0-9]{1,40}$")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
#: RQ stores jobs under `rq:job:<id>`; keep ids short enough to read in logs and dashboards.
_JOB_ID_MAX = 200


class ScheduleError(ValueError):
    """A time, zone or offset that cannot be used, explained in plain words."""


# -- zones and wall times ------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"`{name}` is not a time zone; use an IANA name like America/Los_Angeles"
        ) from None


def as_zone(zone: Zone) -> tzinfo:
    """The tzinfo for an IANA name (cached) or the tzinfo itself."""
    if isinstance(zone, str):
        return _zone_named(zone)
    return zone


@lru_cache(maxsize=4096)
def parse_hhmm(text: str) -> time:
    """"08:30" -> time(8, 30). Raise ScheduleError in plain words otherwise."""
    match = _HHMM.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError(f"`{text}` is not a time of day; write HH:MM from 00:00 to 23:59")
    return time(int(match[1]), int(match[2]))


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError(f"`{name}` has no time zone; pass an aware UTC datetime")


def _wall_to_utc(wall: datetime, tz: tzinfo) -> datetime:
    # fold=0: shift forward through a gap, take the first of two overlapping instants.
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def local_at(day: date, hhmm: str, zone: Zone) -> datetime:
    """The instant (UTC) when the wall clock in `zone` shows `hhmm` on local `day`.

    A time inside the spring-forward gap is shifted forward by the gap's length; an
    ambiguous fall-back time is its first occurrence.
    """
    at = parse_hhmm(hhmm)
    return _wall_to_utc(datetime.combine(day, at), as_zone(zone))


def next_daily(hhmm: str, zone: Zone, after: datetime) -> datetime:
    """The next daily `hhmm` local time strictly after `after` (UTC result).

    Each local day yields at most one instant: once today's has fired (`after` is at or
    past it), the next one is tomorrow's, even on the day the clocks go back.
    """
    _require_aware(after, "after")
    tz = as_zone(zone)
    day = after.astimezone(tz).date()
    due = local_at(day, hhmm, tz)
    if due > after:
        return due
    # Any wall time on the next local day is later than every instant of this one (a gap
    # only shifts it later), so this is strictly after `after` too, even where a zone
    # skipped a whole date (Pacific/Apia, 2011-12-30).
    return local_at(day + timedelta(days=1), hhmm, tz)


def _dues_in_window(hhmm: str, tz: tzinfo, start: datetime, end: datetime) -> tuple[datetime, ...]:
    first = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    out: list[datetime] = []
    day = first
    while day <= last:
        due = local_at(day, hhmm, tz)
        if start <= due < end and (not out or out[-1] != due):
            out.append(due)
        day += timedelta(days=1)
    return tuple(out)


def daily_plan(
    participants: Iterable[tuple[K, str | None, str]],
    day_start_utc: datetime,
    day_end_utc: datetime,
    *,
    on_error: Callable[[K, ScheduleError], None] | None = None,
) -> Iterator[tuple[K, datetime]]:
    """Yield (participant id, due UTC) for every daily check-in in [start, end).

    `participants` yields (id, "HH:MM" or None, IANA zone name); a None time means no daily
    check-in. The window is half-open, so consecutive windows plan each local day exactly
    once; a UTC day may hold 0 or 2 check-ins of one participant around DST changes.

    The work is done once per (zone, time) pair, so 100,000 participants cost little more
    than the few thousand distinct pairs they use. A bad zone or time raises ScheduleError
    naming the participant, or is passed to `on_error(id, error)` and skipped, so one bad
    row need not stop everyone's check-ins.
    """
    _require_aware(day_start_utc, "day_start_utc")
    _require_aware(day_end_utc, "day_end_utc")
    start, end = day_start_utc.astimezone(UTC), day_end_utc.astimezone(UTC)
    if end < start:
        raise ScheduleError("the planning window ends before it starts")
    cache: dict[tuple[str, str], tuple[datetime, ...] | ScheduleError] = {}
    for pid, hhmm, zone_name in participants:
        if hhmm is None:
            continue
        key = (zone_name, hhmm)
        dues = cache.get(key)
        if dues is None:
            try:
                dues = _dues_in_window(hhmm, as_zone(zone_name), start, end)
            except ScheduleError as exc:
                dues = exc
            cache[key] = dues
        if isinstance(dues, ScheduleError):
            if on_error is None:
                raise ScheduleError(f"participant {pid}: {dues}") from dues
            on_error(pid, dues)
            continue
        for due in dues:
            yield pid, due


# -- quiet hours ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """Local hours when only urgent messages may go out: from `start` up to `end`.

    The default, 21:00-08:00, leaves 08:00-21:00 for sending (the US TCPA window). A window
    may wrap midnight (21:00-08:00) or not (12:00-14:00).
    """

    start: str = "21:00"
    end: str = "08:00"

    def __post_init__(self) -> None:
        if parse_hhmm(self.start) == parse_hhmm(self.end):
            raise ScheduleError(
                f"quiet hours start and end at the same time ({self.start}); "
                "leave quiet hours out instead"
            )

    @property
    def wraps(self) -> bool:
        """True when the quiet window crosses midnight."""
        return parse_hhmm(self.start) > parse_hhmm(self.end)

    def is_quiet(self, local: time) -> bool:
        """Is this local time of day inside quiet hours? (start included, end excluded)."""
        start, end = parse_hhmm(self.start), parse_hhmm(self.end)
        local = local.replace(tzinfo=None, fold=0)
        if start > end:
            return local >= start or local < end
        return start <= local < end


def defer(due: datetime, zone: Zone, quiet: QuietHours, urgent: bool = False) -> datetime:
    """Move `due` out of quiet hours to the next allowed start, local time.

    22:00 local goes out at 08:00 the next day, 06:00 at 08:00 the same day. Urgent
    (safety) messages and times already allowed are returned unchanged. An `end` inside the
    spring-forward gap follows the gap rule (shifted later): late, never early.
    """
    _require_aware(due, "due")
    if urgent:
        return due
    tz = as_zone(zone)
    local = due.astimezone(tz)
    if not quiet.is_quiet(local.time()):
        return due
    day = local.date()
    if quiet.wraps and local.time() >= parse_hhmm(quiet.start):
        day += timedelta(days=1)
    allowed = local_at(day, quiet.end, tz)
    if allowed <= due:
        # `due` is in the repeated hour after the first `end` went by: wait for the second.
        wall = datetime.combine(day, parse_hhmm(quiet.end))
        allowed = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return allowed


def advance(due: datetime, zone: Zone, quiet: QuietHours) -> datetime:
    """Bring `due` forward out of quiet hours: the last minute before they began.

    For messages that are useless late, like a reminder two hours before a 07:00 visit:
    better the evening before at 20:59 than at 08:00 after the visit.
    """
    _require_aware(due, "due")
    tz = as_zone(zone)
    local = due.astimezone(tz)
    if not quiet.is_quiet(local.time()):
        return due
    day = local.date()
    if quiet.wraps and local.time() < parse_hhmm(quiet.end):
        day -= timedelta(days=1)
    # The earlier reading of the start: a start inside the gap must not be shifted later,
    # or "a minute before" would fall inside quiet hours.
    wall = datetime.combine(day, parse_hhmm(quiet.start))
    began = min(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
    return began - timedelta(minutes=1)


# -- visit reminders -----------------------------------------------------------------------

_OFFSET_HELP = (
    "write it like -3d@10:00 (3 days before, at 10:00), -1d@18:00 (the evening before) "
    "or -2h (2 hours before); + means after the visit"
)


@dataclass(frozen=True)
class ReminderOffset:
    """When a reminder goes out relative to a visit, as a study's config writes it.

    "-3d@10:00" is 10:00 local three calendar days before the visit; "-1d" is the same wall
    time the day before; "-2h" and "-90m" are elapsed time before the visit. `+` means after.
    Days count calendar days in the participant's zone, hours and minutes count real time,
    so "-1d" stays 09:00 for a 09:00 visit across a DST change, and "-24h" does not.
    """

    sign: int  # -1 before the visit, +1 after
    days: int | None = None
    hours: int | None = None
    minutes: int | None = None
    at: str | None = None  # "HH:MM" local, only with whole days

    @classmethod
    def parse(cls, text: str) -> ReminderOffset:
        """Parse "-3d@10:00", "-1d@18:00", "-2h", "+1d@09:00"; raise ScheduleError."""
        if not isinstance(text, str):
            raise ScheduleError(f"`{text!r}` is not a reminder offset; {_OFFSET_HELP}")
        compact = re.sub(r"\s+", "", text).lower()
        match = _OFFSET.match(compact)
        if match is None or not (match["d"] or match["h"] or match["m"]):
            raise ScheduleError(f"`{text}` is not a reminder offset; {_OFFSET_HELP}")
        at = match["at"]
        if at is not None:
            if match["h"] or match["m"]:
                raise ScheduleError(
                    f"`{text}`: a time of day (@HH:MM) goes with whole days only, "
                    "like -1d@10:00"
                )
            try:
                at = parse_hhmm(at).strftime("%H:%M")
            except ScheduleError:
                raise ScheduleError(
                    f"`{text}`: `{at}` is not a time of day; write HH:MM from 00:00 to 23:59"
                ) from None
        offset = cls(
            sign=-1 if match["sign"] == "-" else 1,
            days=int(match["d"]) if match["d"] else None,
            hours=int(match["h"]) if match["h"] else None,
            minutes=int(match["m"]) if match["m"] else None,
            at=at,
        )
        if at is None and not offset._delta() and not offset.days:
            raise ScheduleError(f"`{text}` is zero: the reminder would arrive with the visit")
        return offset

    @property
    def key(self) -> str:
        """Canonical text ("-3d@10:00"): stable across spacing and case, for dedupe keys."""
        out = "-" if self.sign < 0 else "+"
        for value, unit in ((self.days, "d"), (self.hours, "h"), (self.minutes, "m")):
            if value is not None:
                out += f"{value}{unit}"
        return out + (f"@{self.at}" if self.at else "")

    def _delta(self) -> timedelta:
        return timedelta(hours=self.hours or 0, minutes=self.minutes or 0)

    def when(self, visit_at: datetime, zone: Zone) -> datetime:
        """The reminder's instant (UTC) for a visit, before any quiet-hours adjustment."""
        _require_aware(visit_at, "visit_at")
        tz = as_zone(zone)
        local = visit_at.astimezone(tz)
        shift = timedelta(days=self.sign * (self.days or 0))
        if self.at is not None:
            return local_at(local.date() + shift, self.at, tz)
        # Calendar days on the wall clock first, then elapsed hours and minutes in UTC.
        base = _wall_to_utc(local.replace(tzinfo=None) + shift, tz) if self.days else local
        return base.astimezone(UTC) + self.sign * self._delta()


def reminder_times(
    visit_at: datetime,
    zone: Zone,
    offsets: Iterable[ReminderOffset | str],
    now: datetime,
    quiet: QuietHours | None = None,
) -> list[tuple[str, datetime]]:
    """(offset key, due UTC) for each reminder of a visit still to come, soonest first.

    Reminders due before `now` are skipped, as are "before" reminders that would arrive at
    or after the visit (-0d@10:00 for a 09:00 visit). With `quiet`, a reminder in quiet hours
    is deferred to the end of them, or, if that would be after the visit, brought forward to
    just before they began. Two offsets landing on the same instant send once (the first
    listed). Build the dedupe key from the offset key: "visit:<id>:-3d@10:00".
    """
    _require_aware(visit_at, "visit_at")
    _require_aware(now, "now")
    tz = as_zone(zone)
    seen_keys: set[str] = set()
    seen_times: set[datetime] = set()
    out: list[tuple[str, datetime]] = []
    for raw in offsets:
        offset = ReminderOffset.parse(raw) if isinstance(raw, str) else raw
        if offset.key in seen_keys:
            continue
        seen_keys.add(offset.key)
        due = offset.when(visit_at, tz)
        if quiet is not None:
            moved = defer(due, tz, quiet)
            if offset.sign < 0 and moved >= visit_at:
                moved = advance(due, tz, quiet)
            due = moved
        if (offset.sign < 0 and due >= visit_at) or due < now or due in seen_times:
            continue
        seen_times.add(due)
        out.append((offset.key, due))
    out.sort(key=lambda item: item[1])  # stable: ties keep the configured order
    return out


# -- job ids -------------------------------------------------------------------------------


def job_id(*parts: object) -> str:
    """A stable RQ job id from parts: letters, digits, `_` and `-` only.

    Short alphanumeric parts are kept as they are; any other part becomes a readable slug
    plus a hash of the exact text, so "visit:12:-3d@10:00" and "visit-12--3d-10-00" differ.
    Parts are joined with `_`, which no part contains, so different part lists never meet.
    """
    if not parts:
        raise ScheduleError("a job id needs at least one part")
    out: list[str] = []
    for part in parts:
        text = str(part)
        if _JOB_ID_SAFE.match(text):
            out.append(text)
            continue
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        slug = _SLUG_UNSAFE.sub("-", text).strip("-")[:32]
        out.append(f"{slug}-{digest}" if slug else f"-{digest}")
    joined = "_".join(out)
    if len(joined) > _JOB_ID_MAX:
        digest = hashlib.sha256(joined.encode("utf-8")).hexdigest()[:24]
        joined = f"{joined[: _JOB_ID_MAX - 26]}_-{digest}"
    return joined
