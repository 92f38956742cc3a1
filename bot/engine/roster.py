"""The on-call roster and the escalation policy: who is paged, when, and how fast.

Pure: no database, no clock (callers pass `now`). The same `Roster` value comes from
`flows/roster.yaml` (checked by `bot flows check`) or from the database (`bot navigators`),
so the coverage check and "who is on call now" are the same code for both.

A roster is navigators (name, phone, email, language, alert channels), a coordinator (the
last level of the chain) and weekly on-call windows in local time, each naming a primary
and a backup. A window whose end is at or before its start runs past midnight into the next
day ("20:00" to "08:00"); "24:00" is the end of the day. An hour of the week with no primary
on call is an error: an urgent alert at that hour would go straight to the backup at best.

The policy (`escalation:` in `study.yaml`) says how long each severity may wait for an
acknowledgement before the alert climbs, the emergency number in the participant's safety
message, whether an opted-out participant still gets that message, and the business hours
(local to the roster's time zone) outside which a routine escalation waits to be paged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from .durations import format_duration, parse_duration
from .languages import SUPPORTED, primary
from .loader import _Map, read_yaml
from .problems import FlowError, Problem, did_you_mean

ROSTER_FILE = "roster.yaml"
CHANNELS = ("sms", "whatsapp", "email")
ROLES = ("primary", "backup")
SEVERITIES = ("urgent", "high", "routine")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_TITLES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES
#: Levels of the chain: re-alerts of the primary, then the backup, then the coordinator.
LEVEL_PRIMARY, LEVEL_PRIMARY_AGAIN, LEVEL_BACKUP, LEVEL_COORDINATOR = 0, 1, 2, 3
TOP_LEVEL = LEVEL_COORDINATOR
BUSINESS_DAY = "next business day"
#: When a routine escalation may page someone (in the roster's time zone); urgent and high
#: ones page at any hour.
DEFAULT_BUSINESS_HOURS = "09:00-17:00"
DEFAULT_BUSINESS_DAYS = "mon-fri"
WEEKDAYS = frozenset(range(5))
DEFERRED_SEVERITIES = frozenset({"routine"})
#: What the safety message says when study.yaml names no number (the check warns).
DEFAULT_EMERGENCY_NUMBER = "911"
#: How long each severity may wait for an acknowledgement before the alert climbs.
DEFAULT_DEADLINES: Mapping[str, str] = {"urgent": "10m", "high": "30m", "routine": BUSINESS_DAY}

ROSTER_KEYS = {"timezone", "navigators", "coordinator", "on_call"}
NAVIGATOR_KEYS = {"name", "phone", "email", "language", "channels"}
WINDOW_KEYS = {"days", "from", "to", "primary", "backup"}
POLICY_KEYS = {"acknowledge_within", "emergency_number", "safety_message_when_opted_out",
               "business_hours", "business_days"}

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_DAY_ALIASES = {"weekdays": "mon-fri", "weekends": "sat-sun", "daily": "mon-sun",
                "every day": "mon-sun", "everyday": "mon-sun"}


class RosterError(ValueError):
    """A value that cannot be used, explained in plain words."""


# ---- values ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NavigatorSpec:
    name: str
    phone: str | None = None
    email: str | None = None
    language: str = "en"
    channels: tuple[str, ...] = ("sms",)
    coordinator: bool = False


@dataclass(frozen=True, slots=True)
class Window:
    """`navigator` is on call as `role` on `days` (0 = Monday) from `start` to `end`
    (minutes after local midnight); `end <= start` runs into the next day."""

    navigator: str
    role: str
    days: frozenset[int]
    start: int
    end: int

    def covers(self, weekday: int, minute: int) -> bool:
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        return ((weekday in self.days and minute >= self.start)
                or ((weekday - 1) % 7 in self.days and minute < self.end))

    def describe(self) -> str:
        return f"{format_days(self.days)} {format_clock(self.start)}-{format_clock(self.end)}"


@dataclass(frozen=True, slots=True)
class Roster:
    timezone: str = "UTC"
    navigators: tuple[NavigatorSpec, ...] = ()
    windows: tuple[Window, ...] = ()

    @property
    def by_name(self) -> dict[str, NavigatorSpec]:
        return {n.name: n for n in self.navigators}

    @property
    def coordinators(self) -> tuple[NavigatorSpec, ...]:
        return tuple(n for n in self.navigators if n.coordinator)

    def on_call(self, role: str, now: datetime) -> tuple[NavigatorSpec, ...]:
        """Who is on call as `role` at `now` (aware), in the order the windows list them."""
        local = now.astimezone(zone(self.timezone))
        minute = local.hour * 60 + local.minute
        names = dict.fromkeys(w.navigator for w in self.windows
                              if w.role == role and w.covers(local.weekday(), minute))
        people = self.by_name
        return tuple(people[n] for n in names if n in people)

    def recipients(self, level: int, now: datetime) -> tuple[NavigatorSpec, ...]:
        """Who an alert at `level` goes to (possibly nobody: the caller climbs on)."""
        if level in (LEVEL_PRIMARY, LEVEL_PRIMARY_AGAIN):
            return self.on_call("primary", now)
        if level == LEVEL_BACKUP:
            return self.on_call("backup", now)
        return self.coordinators


@dataclass(frozen=True, slots=True)
class Deadline:
    """How long an alert waits: a duration, or until the same time on the next business
    day (Monday to Friday unless the study says otherwise, in the roster's time zone)."""

    delta: timedelta | None = None  # None: the next business day

    def after(self, now: datetime, timezone: str = "UTC",
              business_days: frozenset[int] = WEEKDAYS) -> datetime:
        if self.delta is not None:
            return now + self.delta
        local = now.astimezone(zone(timezone)) + timedelta(days=1)
        for _ in range(7):
            if local.weekday() in business_days:
                break
            local += timedelta(days=1)
        # Wall-clock arithmetic: the same local time, whatever DST did in between.
        return local.replace(tzinfo=None).replace(tzinfo=zone(timezone)).astimezone(now.tzinfo)

    def describe(self) -> str:
        return BUSINESS_DAY if self.delta is None else format_duration(self.delta)


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    deadlines: Mapping[str, Deadline] = field(default_factory=lambda: {
        s: _deadline(v) for s, v in DEFAULT_DEADLINES.items()})
    emergency_number: str = ""
    safety_message_when_opted_out: bool = False
    #: Minutes after local midnight: business hours start and end (within one day).
    business_hours: tuple[int, int] = (9 * 60, 17 * 60)
    business_days: frozenset[int] = WEEKDAYS

    def deadline(self, severity: str) -> Deadline:
        # An unknown severity waits no longer than an urgent one.
        return self.deadlines.get(severity) or _deadline(DEFAULT_DEADLINES["urgent"])

    def acknowledge_by(self, severity: str, paged_at: datetime, timezone: str) -> datetime:
        """When an alert paged at `paged_at` climbs if nobody acknowledges it."""
        return self.deadline(severity).after(paged_at, timezone, self.business_days)

    def in_business_hours(self, now: datetime, timezone: str) -> bool:
        local = now.astimezone(zone(timezone))
        minute = local.hour * 60 + local.minute
        start, end = self.business_hours
        return local.weekday() in self.business_days and start <= minute < end

    def page_at(self, severity: str, now: datetime, timezone: str) -> datetime:
        """When an escalation of `severity` may page someone: `now`, except a routine one
        outside business hours, which waits for them to begin."""
        if severity not in DEFERRED_SEVERITIES or self.in_business_hours(now, timezone):
            return now
        tz = zone(timezone)
        today = now.astimezone(tz).date()
        start = time(self.business_hours[0] // 60, self.business_hours[0] % 60)
        for ahead in range(8):
            day = today + timedelta(days=ahead)
            opens = datetime.combine(day, start, tzinfo=tz)
            if day.weekday() in self.business_days and opens > now:
                return opens.astimezone(now.tzinfo)
        return now  # no business day at all: never hold an alert back

    @property
    def emergency(self) -> str:
        return self.emergency_number or DEFAULT_EMERGENCY_NUMBER


def _deadline(text: str) -> Deadline:
    if text.strip().lower().replace("_", " ") in (BUSINESS_DAY, "1 business day"):
        return Deadline(None)
    return Deadline(parse_duration(text))


# ---- small parsers ---------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RosterError(f"`{name}` is not a time zone; use an IANA name like "
                          "America/New_York") from None


def parse_clock(value: object) -> int:
    """Minutes after midnight from "08:00" ("24:00" is 1440)."""
    if isinstance(value, int) and not isinstance(value, bool) and 60 <= value <= DAY_MINUTES:
        return value  # YAML 1.1 reads an unquoted 20:00 as 1200 (base 60): minutes already
    match = _CLOCK.match(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise RosterError(f"`{value}` is not a time of day; write it like \"08:00\", in quotes")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > DAY_MINUTES:
        raise RosterError(f"`{value}` is past the end of the day (24:00)")
    return minutes


def parse_hours(value: object) -> tuple[int, int]:
    """ "09:00-17:00" -> (540, 1020): a span of hours within one day."""
    first, sep, last = value.partition("-") if isinstance(value, str) else ("", "", "")
    if not sep:
        raise RosterError(f"`{value}` is not a span of hours; write it like \"09:00-17:00\", "
                          "in quotes")
    start, end = parse_clock(first.strip()), parse_clock(last.strip())
    if start >= end:
        raise RosterError(f"`{value}` must end after it starts, within one day, like "
                          "\"09:00-17:00\"")
    return start, end


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_days(value: object) -> frozenset[int]:
    """ "mon-fri", "sat,sun", "weekdays", "daily", or a list of day names."""
    items: list[str]
    if isinstance(value, list):
        items = [str(v) for v in value]
    elif isinstance(value, str):
        text = _DAY_ALIASES.get(value.strip().lower(), value)
        items = [part for part in re.split(r"[,\s]+", text) if part]
    else:
        raise RosterError("`days` must name days, like mon-fri or [sat, sun]")
    out: set[int] = set()
    for item in items:
        item = _DAY_ALIASES.get(item.strip().lower(), item.strip().lower())
        first, _, last = item.partition("-")
        try:
            a = DAYS.index(first[:3])
            b = DAYS.index(last[:3]) if last else a
        except ValueError:
            raise RosterError(f"`{item}` is not a day; use mon, tue, wed, thu, fri, sat, sun "
                              "or a range like mon-fri") from None
        out.update(DAYS.index(DAYS[(a + i) % 7]) for i in range((b - a) % 7 + 1))
    if not out:
        raise RosterError("`days` names no day")
    return frozenset(out)


def format_days(days: Iterable[int]) -> str:
    chosen = sorted(set(days))
    if chosen == list(range(7)):
        return "every day"
    if len(chosen) > 2 and chosen == list(range(chosen[0], chosen[-1] + 1)):
        return f"{DAY_TITLES[chosen[0]]}-{DAY_TITLES[chosen[-1]]}"
    return ", ".join(DAY_TITLES[d] for d in chosen)


def check_phone(raw: str) -> str:
    """E.164 ("+16175550150") or RosterError. Navigators are texted internationally, so the
    country code is required: there is no default region to guess from."""
    try:
        number = phonenumbers.parse(raw.strip().removeprefix("whatsapp:"), None)
    except phonenumbers.NumberParseException:
        raise RosterError(f"`{raw}` is not a phone number; write it with + and the country "
                          "code, like +16175550150") from None
    if not phonenumbers.is_valid_number(number):
        raise RosterError(f"`{raw}` is not a valid phone number for its country")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def check_email(raw: str) -> str:
    if not _EMAIL.match(raw.strip()):
        raise RosterError(f"`{raw}` is not an email address")
    return raw.strip()


def check_channels(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value or "").replace(",", " ").split()
    out: list[str] = []
    for item in items:
        channel = str(item).strip().lower()
        if channel not in CHANNELS:
            hint = did_you_mean(channel, CHANNELS) or f"use {', '.join(CHANNELS)}"
            raise RosterError(f"`{item}` is not an alert channel ({hint})")
        if channel not in out:
            out.append(channel)
    if not out:
        raise RosterError("list at least one alert channel: sms, whatsapp or email")
    return tuple(out)


def navigator_problems(nav: NavigatorSpec) -> list[str]:
    """What is missing for a navigator's channels to work, in plain words."""
    out = []
    if {"sms", "whatsapp"} & set(nav.channels) and not nav.phone:
        phoned = "/".join(c for c in nav.channels if c != "email")
        out.append(f"`{nav.name}` gets alerts by {phoned} but has no phone")
    if "email" in nav.channels and not nav.email:
        out.append(f"`{nav.name}` gets alerts by email but has no email address")
    return out


# ---- coverage --------------------------------------------------------------------------


def uncovered(roster: Roster, role: str) -> dict[int, list[tuple[int, int]]]:
    """Per weekday, the (start, end) minute ranges in which nobody is on call as `role`."""
    covered = bytearray(WEEK_MINUTES)
    names = roster.by_name
    for w in roster.windows:
        if w.role != role or w.navigator not in names:
            continue
        length = (w.end - w.start) % DAY_MINUTES or DAY_MINUTES
        for day in w.days:
            begin = day * DAY_MINUTES + w.start
            for m in range(begin, begin + length):
                covered[m % WEEK_MINUTES] = 1
    gaps: dict[int, list[tuple[int, int]]] = {}
    for day in range(7):
        base = day * DAY_MINUTES
        minute = 0
        while minute < DAY_MINUTES:
            if covered[base + minute]:
                minute += 1
                continue
            start = minute
            while minute < DAY_MINUTES and not covered[base + minute]:
                minute += 1
            gaps.setdefault(day, []).append((start, minute))
    return gaps


def describe_gaps(gaps: Mapping[int, Sequence[tuple[int, int]]]) -> str:
    """ "Sat, Sun all day; Mon-Fri 12:00-13:00": days with the same gaps grouped."""
    by_ranges: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for day in sorted(gaps):
        by_ranges.setdefault(tuple(gaps[day]), []).append(day)
    parts = []
    for ranges, days in sorted(by_ranges.items(), key=lambda kv: kv[1][0]):
        if ranges == ((0, DAY_MINUTES),):
            parts.append(f"{format_days(days)} all day")
        else:
            hours = ", ".join(f"{format_clock(a)}-{format_clock(b)}" for a, b in ranges)
            parts.append(f"{format_days(days)} {hours}")
    return "; ".join(parts)


# ---- roster.yaml -----------------------------------------------------------------------


def _line(value: Any, default: int = 1) -> int:
    return int(getattr(value, "line", default) or default)


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def err(self, line: int, message: str, suggestion: str | None = None,
            code: str = "bad_roster", level: str = "error") -> None:
        self.problems.append(Problem(self.path, line, None, message, suggestion,
                                     level="warning" if level == "warning" else "error",
                                     code=code))

    def navigator(self, item: Any, seen: dict[str, int],
                  phones: dict[str, str]) -> NavigatorSpec | None:
        line = _line(item)
        if not isinstance(item, _Map):
            self.err(line, "each navigator needs `name:` and how to reach them",
                     "e.g. - name: ana\\n    phone: \"+16175550150\"\\n    channels: [sms]")
            return None
        for key in sorted(set(item) - NAVIGATOR_KEYS):
            self.err(item.key_lines[key], f"`{key}` is not a navigator setting",
                     did_you_mean(key, NAVIGATOR_KEYS), code="unknown_key", level="warning")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            self.err(item.key_lines.get("name", line), "a navigator needs a `name:` of letters, "
                     "digits, `.`, `_` or `-` (it is what they type in `--by` and you see "
                     "in reports)", code="bad_navigator")
            return None
        if name in seen:
            self.err(item.key_lines["name"], f"navigator `{name}` is listed twice (also on "
                     f"line {seen[name]})", code="duplicate_navigator")
            return None
        seen[name] = item.key_lines["name"]
        ok = True
        phone: str | None = None
        email: str | None = None
        channels: tuple[str, ...] = ("sms",)
        if item.get("phone") is not None:
            try:
                phone = check_phone(str(item["phone"]))
            except RosterError as exc:
                self.err(item.key_lines["phone"], f"navigator `{name}`: {exc}", code="bad_phone")
                ok = False
            else:
                if phone in phones:
                    self.err(item.key_lines["phone"], f"navigator `{name}` has the same phone "
                             f"as `{phones[phone]}`: an ACK could not tell them apart",
                             code="duplicate_phone")
                    ok = False
                phones[phone] = name
        if item.get("email") is not None:
            try:
                email = check_email(str(item["email"]))
            except RosterError as exc:
                self.err(item.key_lines["email"], f"navigator `{name}`: {exc}", code="bad_email")
                ok = False
        if "channels" in item:
            try:
                channels = check_channels(item["channels"])
            except RosterError as exc:
                self.err(item.key_lines["channels"], f"navigator `{name}`: {exc}",
                         code="bad_channel")
                ok = False
        language = str(item.get("language") or "en")
        if primary(language) not in SUPPORTED:
            self.err(item.key_lines.get("language", line), f"navigator `{name}`: `{language}` "
                     "is not a language the bot supports", f"use one of {', '.join(SUPPORTED)}",
                     code="bad_language", level="warning")
        nav = NavigatorSpec(name=name, phone=phone, email=email, language=primary(language),
                            channels=channels)
        if ok:
            for message in navigator_problems(nav):
                self.err(line, message, "add the missing contact, or change `channels:`",
                         code="bad_channel")
                ok = False
        if ok and channels == ("whatsapp",):
            self.err(item.key_lines.get("channels", line), f"navigator `{name}` gets alerts by "
                     "WhatsApp only: outside WhatsApp's 24-hour window a free-form alert is "
                     "refused", "add sms or email", code="whatsapp_only", level="warning")
        return nav

    def people(self, value: Any, key: str, line: int, known: Mapping[str, NavigatorSpec],
               ) -> list[str]:
        names = value if isinstance(value, list) else [value]
        out = []
        for name in names:
            if not isinstance(name, str) or not name:
                self.err(line, f"`{key}` must name a navigator (or a list of them)")
            elif name not in known:
                self.err(line, f"`{key}: {name}` names no navigator in this roster",
                         did_you_mean(name, known) or "add them under `navigators:`",
                         code="unknown_navigator")
            else:
                out.append(name)
        return out

    def window(self, item: Any, known: Mapping[str, NavigatorSpec]) -> list[Window]:
        line = _line(item)
        if not isinstance(item, _Map):
            self.err(line, "each on-call window needs `days`, `from`, `to` and `primary`")
            return []
        for key in sorted(set(item) - WINDOW_KEYS):
            self.err(item.key_lines[key], f"`{key}` is not an on-call setting",
                     did_you_mean(key, WINDOW_KEYS), code="unknown_key", level="warning")
        try:
            days = parse_days(item.get("days", "daily"))
            start = parse_clock(item.get("from", "00:00"))
            end = parse_clock(item.get("to", "24:00"))
        except RosterError as exc:
            self.err(line, str(exc), code="bad_window")
            return []
        if start == DAY_MINUTES:
            self.err(item.key_lines.get("from", line), "`from: 24:00` starts at the end of the "
                     "day", "write 00:00 and the next day", code="bad_window")
            return []
        if not set(ROLES) & set(item):
            self.err(line, "this on-call window names no `primary` (or `backup`)",
                     code="bad_window")
        out: list[Window] = []
        for role in ROLES:
            if role in item:
                for name in self.people(item[role], role, item.key_lines[role], known):
                    out.append(Window(name, role, days, start, end))
        return out


def read_roster_text(text: str, path: str) -> tuple[Roster | None, list[Problem]]:
    """Parse and check a roster file; None when it cannot be read at all."""
    try:
        data = read_yaml(text, path)
    except FlowError as exc:
        return None, exc.problems
    reader = _Reader(path)
    if not isinstance(data, _Map):
        reader.err(1, "a roster must be a mapping with `navigators:` and `on_call:`")
        return None, reader.problems
    for key in sorted(set(data) - ROSTER_KEYS):
        reader.err(data.key_lines[key], f"`{key}` is not a roster setting",
                   did_you_mean(key, ROSTER_KEYS), code="unknown_key", level="warning")
    timezone = str(data.get("timezone") or "UTC")
    try:
        zone(timezone)
    except RosterError as exc:
        reader.err(data.key_lines.get("timezone", 1), str(exc), code="bad_timezone")
        timezone = "UTC"
    navs: list[NavigatorSpec] = []
    raw = data.get("navigators")
    if not isinstance(raw, list) or not raw:
        reader.err(data.key_lines.get("navigators", 1), "the roster lists no `navigators:`",
                   code="no_navigators")
        raw = []
    seen: dict[str, int] = {}
    phones: dict[str, str] = {}
    for item in raw:
        nav = reader.navigator(item, seen, phones)
        if nav is not None:
            navs.append(nav)
    known = {n.name: n for n in navs}
    known.update({name: NavigatorSpec(name) for name in seen if name not in known})
    line = data.key_lines.get("coordinator", 1)
    coordinators = set(reader.people(data["coordinator"], "coordinator", line, known)) \
        if data.get("coordinator") else set()
    if not data.get("coordinator"):
        reader.err(1, "the roster names no `coordinator:`: unacknowledged alerts climb to "
                   "the primary, the backup, then the coordinator", "add `coordinator: NAME`",
                   code="no_coordinator")
    navs = [NavigatorSpec(n.name, n.phone, n.email, n.language, n.channels,
                          n.name in coordinators) for n in navs]
    windows: list[Window] = []
    raw_windows = data.get("on_call")
    if not isinstance(raw_windows, list) or not raw_windows:
        reader.err(data.key_lines.get("on_call", 1), "the roster has no `on_call:` windows",
                   "e.g. - days: daily\\n    from: \"00:00\"\\n    to: \"24:00\"\\n"
                   "    primary: ana\\n    backup: ben", code="no_on_call")
        raw_windows = []
    for item in raw_windows:
        windows.extend(reader.window(item, known))
    roster = Roster(timezone, tuple(navs), tuple(windows))
    if raw_windows and not any(p.code in ("bad_window", "unknown_navigator")
                               for p in reader.problems):
        line = data.key_lines.get("on_call", 1)
        for role, level in (("primary", "error"), ("backup", "warning")):
            gaps = uncovered(roster, role)
            if gaps:
                what = "no one" if role == "primary" else "no backup"
                reader.err(line, f"{what} is on call ({timezone}): {describe_gaps(gaps)}",
                           f"add an on-call window with a {role} for those hours",
                           code="roster_gap" if role == "primary" else "backup_gap",
                           level=level)
    return roster, reader.problems


def roster_problems(roster: Roster, where: str = "roster") -> list[Problem]:
    """Coverage and contact problems of a roster from the database (no line numbers)."""
    out: list[Problem] = []
    for nav in roster.navigators:
        out.extend(Problem(where, 0, None, m, code="bad_channel") for m in navigator_problems(nav))
    for role, level in (("primary", "error"), ("backup", "warning")):
        gaps = uncovered(roster, role)
        if gaps:
            what = "no one" if role == "primary" else "no backup"
            out.append(Problem(where, 0, None, f"{what} is on call ({roster.timezone}): "
                               f"{describe_gaps(gaps)}", level="error" if level == "error"
                               else "warning", code="roster_gap" if role == "primary"
                               else "backup_gap"))
    if not roster.coordinators:
        out.append(Problem(where, 0, None, "no coordinator: unacknowledged alerts stop at the "
                           "backup", code="no_coordinator"))
    return out


# ---- the policy in study.yaml ----------------------------------------------------------


def read_policy(data: Any, path: str, line: int = 1) -> tuple[EscalationPolicy, list[Problem]]:
    """The `escalation:` section of study.yaml (None: every default)."""
    problems: list[Problem] = []

    def err(at: int, message: str, suggestion: str | None = None) -> None:
        problems.append(Problem(path, at, None, message, suggestion, code="bad_escalation"))

    if data is None:
        return EscalationPolicy(), problems
    if not isinstance(data, _Map):
        err(line, "`escalation` must be a mapping, e.g. `emergency_number: \"911\"`")
        return EscalationPolicy(), problems
    for key in sorted(set(data) - POLICY_KEYS):
        problems.append(Problem(path, data.key_lines[key], None,
                                f"`escalation.{key}` is not a setting",
                                did_you_mean(key, POLICY_KEYS), level="warning",
                                code="unknown_key"))
    deadlines = dict(EscalationPolicy().deadlines)
    within = data.get("acknowledge_within")
    if within is not None and not isinstance(within, _Map):
        err(data.key_lines["acknowledge_within"], "`acknowledge_within` maps severities to "
            "durations", "e.g. {urgent: 10m, high: 30m, routine: next business day}")
    elif isinstance(within, _Map):
        for severity, value in within.items():
            at = within.key_lines[severity]
            if severity not in SEVERITIES:
                err(at, f"`{severity}` is not a severity", did_you_mean(severity, SEVERITIES)
                    or f"use {', '.join(SEVERITIES)}")
                continue
            try:
                deadlines[severity] = _deadline(str(value))
            except ValueError as exc:
                err(at, f"`acknowledge_within.{severity}`: {exc}, or `{BUSINESS_DAY}`")
                continue
            delta = deadlines[severity].delta
            if delta is not None and delta < timedelta(minutes=1):
                err(at, f"`acknowledge_within.{severity}` must be at least 1m")
    number = data.get("emergency_number")
    if number is not None and (not isinstance(number, (str, int)) or isinstance(number, bool)
                               or not re.fullmatch(r"\+?[0-9 ]{2,20}", str(number).strip())):
        err(data.key_lines["emergency_number"], "`emergency_number` must be a number to call, "
            "in quotes", "e.g. emergency_number: \"911\"")
        number = None
    opted_out = data.get("safety_message_when_opted_out", False)
    if not isinstance(opted_out, bool):
        err(data.key_lines["safety_message_when_opted_out"],
            "`safety_message_when_opted_out` must be true or false")
        opted_out = False
    hours = parse_hours(DEFAULT_BUSINESS_HOURS)
    if "business_hours" in data:
        try:
            hours = parse_hours(data["business_hours"])
        except RosterError as exc:
            err(data.key_lines["business_hours"], f"`escalation.business_hours`: {exc}")
    days = parse_days(DEFAULT_BUSINESS_DAYS)
    if "business_days" in data:
        try:
            days = parse_days(data["business_days"])
        except RosterError as exc:
            err(data.key_lines["business_days"], f"`escalation.business_days`: {exc}")
    return EscalationPolicy(deadlines=deadlines,
                            emergency_number=str(number).strip() if number is not None else "",
                            safety_message_when_opted_out=opted_out, business_hours=hours,
                            business_days=days), problems


def load_policy(folder: str | Path) -> tuple[EscalationPolicy, list[Problem]]:
    """The policy in `folder/study.yaml` (defaults when the file or section is missing)."""
    path = Path(folder) / "study.yaml"
    if not path.is_file():
        return EscalationPolicy(), []
    try:
        data = read_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError):
        return EscalationPolicy(), []  # the study check reports an unreadable file
    except FlowError as exc:
        return EscalationPolicy(), exc.problems
    if not isinstance(data, _Map):
        return EscalationPolicy(), []
    return read_policy(data.get("escalation"), str(path), data.key_lines.get("escalation", 1))


def check_folder(folder: str | Path) -> list[Problem]:
    """`bot flows check`'s part: the escalation policy in study.yaml and the roster file.

    A folder without a roster file is fine: the roster may be kept in the database with
    `bot navigators` (and checked there by `bot navigators check`).
    """
    policy, problems = load_policy(folder)
    path = Path(folder) / ROSTER_FILE
    if not path.is_file():
        return problems
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [*problems, Problem(str(path), 1, None, f"cannot read the file: {exc}",
                                   code="unreadable")]
    problems.extend(read_roster_text(text, str(path))[1])
    if not policy.emergency_number:
        problems.append(Problem(str(Path(folder) / "study.yaml"), 1, None,
                                "`escalation.emergency_number` is not set: the safety message "
                                f"says {DEFAULT_EMERGENCY_NUMBER}",
                                "set the number participants should call",
                                level="warning", code="no_emergency_number"))
    return problems
