"""Nurse navigators and their on-call windows, in the database. Every change is audited.

The database is what the bot pages from. `flows/roster.yaml` is the reviewable form of the
same roster: `replace_roster` makes the database match a checked file (`bot navigators load`),
and `load_roster` turns the tables back into the pure `Roster` the engine's checks and
"who is on call now" work on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from . import audit
from .engine.roster import (
    DAYS,
    NavigatorSpec,
    Roster,
    RosterError,
    Window,
    check_channels,
    check_email,
    check_phone,
    format_clock,
    format_days,
    navigator_problems,
    parse_clock,
    parse_days,
    zone,
)
from .participants import mask_phone
from .store.models import Navigator, OnCallWindow
from .store.types import utcnow


class NavigatorError(ValueError):
    """A change that cannot be made, in plain words."""


def channels_of(nav: Navigator) -> tuple[str, ...]:
    return tuple(c for c in nav.channels.split(",") if c)


def spec(nav: Navigator) -> NavigatorSpec:
    return NavigatorSpec(name=nav.name, phone=nav.phone, email=nav.email,
                         language=nav.language, channels=channels_of(nav),
                         coordinator=nav.coordinator)


def _snapshot(nav: Navigator) -> dict[str, Any]:
    # The trail outlives the roster: masked numbers only, as for participants.
    return {"name": nav.name, "phone": mask_phone(nav.phone) if nav.phone else None,
            "email": nav.email, "language": nav.language, "channels": nav.channels,
            "coordinator": nav.coordinator, "active": nav.active}


def active(db: Session) -> list[Navigator]:
    return list(db.exec(select(Navigator).where(col(Navigator.active).is_(True))
                        .order_by(col(Navigator.name))).all())


def find(db: Session, name: str) -> Navigator | None:
    return db.exec(select(Navigator).where(Navigator.name == name)).first()


def find_by_phone(db: Session, phone: str) -> Navigator | None:
    """The active navigator who texts from `phone` (E.164), if any."""
    return db.exec(select(Navigator).where(Navigator.phone == phone,
                                           col(Navigator.active).is_(True))).first()


def windows(db: Session) -> list[tuple[OnCallWindow, Navigator]]:
    rows = db.exec(select(OnCallWindow, Navigator)
                   .join(Navigator, col(Navigator.id) == col(OnCallWindow.navigator_id))
                   .where(col(Navigator.active).is_(True))
                   .order_by(col(OnCallWindow.id))).all()
    return [(w, n) for w, n in rows]


def roster_timezone(db: Session, default: str = "UTC") -> str:
    first = db.exec(select(OnCallWindow.timezone).order_by(col(OnCallWindow.id))).first()
    return first or default


def load_roster(db: Session) -> Roster:
    """The active navigators and their windows, as the engine's `Roster`."""
    navs = active(db)
    out: list[Window] = []
    for w, n in windows(db):
        out.append(Window(n.name, w.role, parse_days(w.days), _minutes(w.start),
                          _minutes(w.end)))
    return Roster(roster_timezone(db), tuple(spec(n) for n in navs), tuple(out))


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _check(name: str, phone: str | None, email: str | None, channels: str | list[str],
           language: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    try:
        phone = check_phone(phone) if phone else None
        email = check_email(email) if email else None
        chosen = check_channels(channels)
    except RosterError as exc:
        raise NavigatorError(str(exc)) from None
    problems = navigator_problems(NavigatorSpec(name, phone, email, language, chosen))
    if problems:
        raise NavigatorError(problems[0])
    return phone, email, chosen


def add(db: Session, *, actor: str, name: str, phone: str | None = None,
        email: str | None = None, language: str = "en", channels: str | list[str] = "sms",
        coordinator: bool = False) -> Navigator:
    """Add a navigator (or bring back a removed one under the same name)."""
    phone, email, chosen = _check(name, phone, email, channels, language)
    nav = find(db, name)
    if nav is not None and nav.active:
        raise NavigatorError(f"navigator `{name}` exists already")
    if phone:
        other = db.exec(select(Navigator).where(Navigator.phone == phone)).first()
        if other is not None and other is not nav:
            raise NavigatorError(f"`{other.name}` has that phone already: an ACK could not "
                                 "tell them apart")
    now = utcnow()
    if nav is None:
        nav = Navigator(name=name, created_at=now)
    nav.phone, nav.email, nav.language = phone, email, language
    nav.channels, nav.coordinator, nav.active = ",".join(chosen), coordinator, True
    nav.updated_at = now
    db.add(nav)
    db.flush()
    audit.record(db, actor=actor, action="navigator.add", entity="navigator",
                 entity_id=nav.name, new=_snapshot(nav), at=now)
    return nav


def remove(db: Session, *, actor: str, name: str) -> Navigator:
    """Take a navigator off the roster: no more alerts, no ACKs from their phone.

    The row stays (past alerts name it); the phone is cleared so it can be given to
    someone else, and their on-call windows are deleted.
    """
    nav = find(db, name)
    if nav is None or not nav.active:
        raise NavigatorError(f"no navigator `{name}`")
    before = _snapshot(nav)
    clear_windows(db, actor=actor, name=name)
    nav.active, nav.phone, nav.updated_at = False, None, utcnow()
    db.add(nav)
    audit.record(db, actor=actor, action="navigator.remove", entity="navigator",
                 entity_id=nav.name, old=before, new=_snapshot(nav))
    return nav


def add_window(db: Session, *, actor: str, name: str, role: str, days: str, start: str,
               end: str, timezone: str | None = None) -> OnCallWindow:
    """Put `name` on call as `role` on `days` from `start` to `end` (local "HH:MM")."""
    nav = find(db, name)
    if nav is None or not nav.active:
        raise NavigatorError(f"no navigator `{name}`")
    if role not in ("primary", "backup"):
        raise NavigatorError("the role is primary or backup")
    current = roster_timezone(db, default="")
    tz = timezone or current or "UTC"
    if current and tz != current:
        raise NavigatorError(f"the roster's windows are in {current}; one time zone per "
                             "roster keeps the coverage check meaningful")
    try:
        zone(tz)
        parsed_days = parse_days(days)
        begin, finish = parse_clock(start), parse_clock(end)
    except RosterError as exc:
        raise NavigatorError(str(exc)) from None
    if begin == 1440:
        raise NavigatorError("a window cannot start at 24:00; use 00:00 and the next day")
    assert nav.id is not None
    window = OnCallWindow(navigator_id=nav.id, role=role,
                          days=",".join(DAYS[d] for d in sorted(parsed_days)),
                          start=format_clock(begin), end=format_clock(finish), timezone=tz)
    db.add(window)
    db.flush()
    audit.record(db, actor=actor, action="navigator.on_call", entity="navigator",
                 entity_id=nav.name, new={"role": role, "days": format_days(parsed_days),
                                          "from": window.start, "to": window.end,
                                          "timezone": tz})
    return window


def clear_windows(db: Session, *, actor: str, name: str) -> int:
    nav = find(db, name)
    if nav is None:
        raise NavigatorError(f"no navigator `{name}`")
    result = db.execute(sa.delete(OnCallWindow).where(col(OnCallWindow.navigator_id) == nav.id))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(db, actor=actor, action="navigator.off_call", entity="navigator",
                     entity_id=nav.name, new={"windows_removed": count})
    return count


@dataclass(slots=True)
class Replaced:
    added: int = 0
    updated: int = 0
    removed: int = 0
    windows: int = 0


def replace_roster(db: Session, roster: Roster, *, actor: str) -> Replaced:
    """Make the database roster match `roster` (a checked roster file), in one transaction."""
    out = Replaced()
    names = {n.name for n in roster.navigators}
    now = utcnow()
    for nav in active(db):
        if nav.name not in names:
            remove(db, actor=actor, name=nav.name)
            out.removed += 1
    db.execute(sa.delete(OnCallWindow))
    db.flush()
    snapshots = {n.name: _snapshot(n) for n in active(db)}
    # Phones move between people in a file edit: clear them first so the unique index holds.
    for kept in db.exec(select(Navigator).where(col(Navigator.name).in_(names))).all():
        kept.phone = None
        db.add(kept)
    db.flush()
    ids: dict[str, int] = {}
    for item in roster.navigators:
        found = find(db, item.name)
        before = snapshots.get(item.name)
        nav = found if found is not None else Navigator(name=item.name, created_at=now)
        nav.phone, nav.email, nav.language = item.phone, item.email, item.language
        nav.channels, nav.coordinator = ",".join(item.channels), item.coordinator
        nav.active, nav.updated_at = True, now
        db.add(nav)
        db.flush()
        assert nav.id is not None
        ids[nav.name] = nav.id
        after = _snapshot(nav)
        if before is None:
            out.added += 1
            audit.record(db, actor=actor, action="navigator.add", entity="navigator",
                         entity_id=nav.name, new=after, at=now)
        elif before != after:
            out.updated += 1
            audit.record(db, actor=actor, action="navigator.update", entity="navigator",
                         entity_id=nav.name, old=before, new=after, at=now)
    for w in roster.windows:
        db.add(OnCallWindow(navigator_id=ids[w.navigator], role=w.role,
                            days=",".join(DAYS[d] for d in sorted(w.days)),
                            start=format_clock(w.start), end=format_clock(w.end),
                            timezone=roster.timezone, created_at=now))
        out.windows += 1
    db.flush()
    audit.record(db, actor=actor, action="roster.load", entity="roster", entity_id="roster",
                 new={"navigators": len(roster.navigators), "windows": out.windows,
                      "timezone": roster.timezone}, at=now)
    return out
