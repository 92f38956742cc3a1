"""Nudges: work due at a time. Planning them into the `nudge` table, and firing them.

Four kinds, all rows in one table (the database is the truth; RQ only carries ids):

- `checkin`: the daily check-in at the participant's local `checkin_time` (or the study's
  default), planned a day and a half ahead, one per local date ("checkin:<pid>:<date>").
- `visit_reminder`: the study's `visit_reminders` offsets before each scheduled visit
  ("visit:<visit>:<visit time>:<offset>"); the visit time is in the key, so a rescheduled
  visit gets fresh reminders and the old ones are cancelled, never silently re-used.
- `timeout`: a waiting question's re-prompt or give-up ("wait:<wait id>:<due>"), made by
  the conversation shell from the engine's `WaitStarted`. Firing resumes the session with
  `Timeout(wait_id)`; if the session has moved on the engine does nothing and the nudge is
  marked `stale`.
- `follow_up`: a flow a `schedule:` step asked for ("follow:<session>:<step>:<due>").

Firing runs in the caller's transaction, with the participant's row locked first (the order
the webhook uses, so the two never deadlock). Outbound messages go to the outbox with their
`due_at` moved out of quiet hours unless they are urgent. A nudge that would start a
conversation during quiet hours, or while the participant is in the middle of another one,
is postponed rather than dropped (see docs/scheduling.md for the rules).
"""

from __future__ import annotations

import functools
import json
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlmodel import Session, SQLModel

from . import consent, conversation, logs, outbox
from .config import Settings
from .engine import runner
from .engine import session as es
from .engine.events import Event, FollowUpScheduled, WaitStarted
from .flow_registry import FlowRegistry
from .schedule import (
    QuietHours,
    ReminderOffset,
    ScheduleError,
    as_zone,
    daily_plan,
    defer,
    parse_hhmm,
    reminder_times,
)
from .store.db import DriverSQL, session_scope
from .store.models import Message, Participant

_log = logs.get_logger("nudges")

_N = SQLModel.metadata.tables["nudge"]
_P = SQLModel.metadata.tables["participant"]
_S = SQLModel.metadata.tables["conversation_session"]
_V = SQLModel.metadata.tables["visit"]

KINDS = ("checkin", "visit_reminder", "timeout", "follow_up")
#: Nudge states. `stale`: the thing it was for had moved on (an answered question, a moved
#: visit). `skipped`: given up on by rule (today's check-in during a long conversation).
PENDING, DONE, STALE, SKIPPED, CANCELLED, FAILED = (
    "pending", "done", "stale", "skipped", "cancelled", "failed")

#: How far ahead check-ins and visit reminders are planned. More than a day, so a planner
#: that is down for hours still leaves every check-in planned.
PLAN_HORIZON = timedelta(hours=36)
#: A nudge that finds the participant in another conversation tries again this much later.
BUSY_RETRY = timedelta(minutes=30)
#: A conversation with no activity for this long no longer holds new ones back.
ABANDONED_AFTER = timedelta(hours=24)
#: How late a postponed nudge may start, after its first due time; then the rule per kind
#: applies (a check-in is skipped for the day, a follow-up starts anyway).
MAX_DELAY = {"checkin": timedelta(hours=4), "visit_reminder": timedelta(hours=4),
             "follow_up": timedelta(hours=12)}
#: Planned rows are written in chunks this size: memory stays flat for any study size,
#: and an `IN (...)` list stays under SQLite's bound-parameter limit.
CHUNK = 2000
#: Finished nudges are deleted this long after they were due (the audit trail and the
#: messages keep what happened).
KEEP_FINISHED = timedelta(days=30)

DEFAULT_CHECKIN_TIME = "09:00"
DEFAULT_VISIT_REMINDERS = ("-3d@10:00", "-1d@18:00", "-2h")
CHECKIN_FLOW = "daily_checkin"
VISIT_REMINDER_FLOW = "visit_reminder"


# ---- study settings ---------------------------------------------------------------------


@dataclass(frozen=True)
class StudySchedule:
    """The scheduling part of `flows/study.yaml`; every field has a default."""

    checkin_time: str = DEFAULT_CHECKIN_TIME
    visit_reminders: tuple[ReminderOffset, ...] = tuple(
        ReminderOffset.parse(o) for o in DEFAULT_VISIT_REMINDERS)
    quiet: QuietHours = field(default_factory=QuietHours)
    checkin_flow: str = CHECKIN_FLOW
    visit_reminder_flow: str = VISIT_REMINDER_FLOW


def _quiet_from(value: Any) -> QuietHours:
    if isinstance(value, Mapping):
        return QuietHours(start=str(value.get("start", "")), end=str(value.get("end", "")))
    if isinstance(value, str) and value.count("-") == 1:
        start, end = (part.strip() for part in value.split("-"))
        return QuietHours(start=start, end=end)
    raise ScheduleError("`quiet_hours` is written {start: \"21:00\", end: \"08:00\"} "
                        "or \"21:00-08:00\" (no messages from 21:00 until 08:00)")


def study_schedule_from(data: Mapping[str, Any]) -> tuple[StudySchedule, list[str]]:
    """Read the scheduling settings; each bad one is reported and its default kept."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    if "checkin_time" in data:
        try:
            values["checkin_time"] = parse_hhmm(str(data["checkin_time"])).strftime("%H:%M")
        except ScheduleError as exc:
            problems.append(f"checkin_time: {exc}")
    if "visit_reminders" in data:
        raw = data["visit_reminders"]
        if not isinstance(raw, list):
            problems.append("visit_reminders: a list such as [\"-3d@10:00\", \"-2h\"]")
        else:
            try:
                values["visit_reminders"] = tuple(ReminderOffset.parse(str(o)) for o in raw)
            except ScheduleError as exc:
                problems.append(f"visit_reminders: {exc}")
    if "quiet_hours" in data:
        try:
            values["quiet"] = _quiet_from(data["quiet_hours"])
        except ScheduleError as exc:
            problems.append(f"quiet_hours: {exc}")
    return StudySchedule(**values), problems


_study_cache: dict[Path, tuple[tuple[int, int] | None, StudySchedule]] = {}
_study_lock = threading.Lock()


def load_study_schedule(flows_dir: str | Path) -> StudySchedule:
    """The study's schedule settings from `<flows_dir>/study.yaml` (re-read when it changes).

    A missing file means the defaults; a broken setting is logged and its default used, so
    a typo never stops check-ins (`bot flows check` reports it to the coordinator).
    """
    path = Path(flows_dir) / "study.yaml"
    try:
        st = path.stat()
        stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = None
    with _study_lock:
        cached = _study_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    study = StudySchedule()
    if stamp is not None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            data = None
            logs.event(_log, "study_settings_unreadable", level=40, file=path.name)
        if isinstance(data, Mapping):
            study, problems = study_schedule_from(data)
            for problem in problems:
                logs.event(_log, "study_setting_invalid", level=40, problem=problem)
    with _study_lock:
        _study_cache[path] = (stamp, study)
    return study


# ---- keys ---------------------------------------------------------------------------------


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def checkin_key(participant_id: int, local_day: date) -> str:
    return f"checkin:{participant_id}:{local_day.isoformat()}"


def visit_key(visit_id: int, visit_at: datetime, offset_key: str) -> str:
    return f"visit:{visit_id}:{_stamp(visit_at)}:{offset_key}"


def wait_key(wait_id: str, due: datetime) -> str:
    return f"wait:{wait_id}:{_stamp(due)}"


def follow_up_key(session_id: str, step: str, due: datetime) -> str:
    return f"follow:{session_id}:{step}:{_stamp(due)}"


def start_key(participant_id: int, flow_id: str, due: datetime) -> str:
    return f"start:{participant_id}:{flow_id}:{_stamp(due)}"


def schedule_start(db: Session, participant_id: int, flow_id: str, due: datetime,
                   now: datetime) -> None:
    """A flow a staff member started during the participant's quiet hours: it starts when
    they end, as a follow-up does (so its re-prompts count from then), once per due time."""
    _insert_ignore(db, [_row(participant_id=participant_id, kind="follow_up", due_at=due,
                             dedupe_key=start_key(participant_id, flow_id, due), now=now,
                             flow_id=flow_id)])


def _row(*, participant_id: int, kind: str, due_at: datetime, dedupe_key: str, now: datetime,
         flow_id: str | None = None, session_id: str | None = None, wait_id: str | None = None,
         visit_id: int | None = None, params: Mapping[str, Any] | None = None,
         ) -> dict[str, Any]:
    return {"participant_id": participant_id, "kind": kind, "flow_id": flow_id,
            "session_id": session_id, "wait_id": wait_id, "visit_id": visit_id,
            "params_json": json.dumps(dict(params), sort_keys=True) if params else "{}",
            "due_at": due_at, "status": PENDING, "dedupe_key": dedupe_key,
            "claimed_at": None, "done_at": None, "created_at": now}


#: The columns a planned row sets (the others keep their defaults, NULL), with their
#: PostgreSQL types for the array form of the insert.
_COLUMNS = (("participant_id", "int"), ("kind", "text"), ("flow_id", "text"),
            ("session_id", "text"), ("wait_id", "text"), ("visit_id", "int"),
            ("params_json", "text"), ("due_at", "timestamptz"), ("status", "text"),
            ("dedupe_key", "text"), ("created_at", "timestamptz"))
_NAMES = tuple(name for name, _type in _COLUMNS)
_pick = operator.itemgetter(*_NAMES)
_TIME_AT = (_NAMES.index("due_at"), _NAMES.index("created_at"))
# Built from the constants above only. PostgreSQL gets one array per column (one statement
# and one round trip per chunk); SQLite, in process, takes executemany as well.
_INSERT_PG = (f"INSERT INTO nudge ({', '.join(_NAMES)}) "  # noqa: S608
              f"SELECT * FROM unnest({', '.join(f'%b::{t}[]' for _n, t in _COLUMNS)}) "
              "ON CONFLICT (dedupe_key) DO NOTHING")
_INSERT_SQLITE = (f"INSERT INTO nudge ({', '.join(_NAMES)}) "  # noqa: S608
                  f"VALUES ({', '.join('?' * len(_NAMES))}) ON CONFLICT (dedupe_key) DO NOTHING")
_FIND = "SELECT id, dedupe_key, due_at, status FROM nudge WHERE dedupe_key"


@functools.lru_cache(maxsize=65536)  # a plan has few distinct times: one per slot and day
def _driver_time(dialect: str, when: datetime) -> Any:
    """A time as the database driver takes it. For SQLite, SQLAlchemy's own DATETIME
    storage format (naive UTC), so SQL comparisons and reads through the models agree."""
    if dialect == "sqlite":
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return when


def _insert_ignore(db: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows whose dedupe key is new; the unique constraint decides, so two planners
    racing each other cannot both get a row in, and nothing aborts the transaction.

    Rows go to the driver as plain values: SQLAlchemy's per-value type processing, and
    on PostgreSQL one statement per row, were most of the cost of planning 100,000
    participants' check-ins.
    """
    if not rows:
        return
    conn = db.connection()
    dialect = conn.dialect.name
    values = []
    for r in rows:
        row = list(_pick(r))
        for i in _TIME_AT:
            row[i] = _driver_time(dialect, row[i])
        values.append(row)
    if dialect == "postgresql":
        columns = tuple(list(column) for column in zip(*values, strict=True))
        # %b: psycopg's binary format; its text form quotes every array element with a
        # regex. On the driver's own cursor, as SQLAlchemy would pass %b through as text.
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            cur.execute(_INSERT_PG, columns)
    else:
        conn.exec_driver_sql(_INSERT_SQLITE, [tuple(v) for v in values])


def _find(db: Session, keys: Sequence[str]) -> list[Any]:
    """(id, key, due_at as the driver returns it, status) of the rows with these keys."""
    conn = db.connection()
    if conn.dialect.name == "postgresql":
        result = conn.exec_driver_sql(f"{_FIND} = ANY(%s)", (list(keys),))
    else:
        marks = ", ".join("?" * len(keys))
        result = conn.exec_driver_sql(f"{_FIND} IN ({marks})", tuple(keys))
    return list(result)


# ---- from the conversation shell ------------------------------------------------------------


def session_rows(participant_id: int, session_id: str, flow_id: str,
                 events: Iterable[Event], now: datetime) -> list[dict[str, Any]]:
    """Nudge rows for a run's `WaitStarted` (re-prompt, give-up) and `FollowUpScheduled`."""
    rows: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, WaitStarted):
            for due, what in ((event.reprompt_at, "reprompt"), (event.give_up_at, "give_up")):
                if due is not None:
                    rows.append(_row(participant_id=participant_id, kind="timeout",
                                     due_at=due, dedupe_key=wait_key(event.wait_id, due),
                                     now=now, flow_id=flow_id, session_id=session_id,
                                     wait_id=event.wait_id, params={"due": what}))
        elif isinstance(event, FollowUpScheduled):
            rows.append(_row(participant_id=participant_id, kind="follow_up",
                             due_at=event.due_at,
                             dedupe_key=follow_up_key(session_id, event.step, event.due_at),
                             now=now, flow_id=event.flow, session_id=session_id))
    return rows


def schedule_session(db: Session, participant_id: int, session_id: str, flow_id: str,
                     events: Sequence[Event], now: datetime,
                     left_wait: str | None = None) -> None:
    """Write a run's nudges; `left_wait`: the wait the run left, whose nudges are now moot.

    Marking them `stale` here is one indexed UPDATE; left alone they would each cost a
    worker job later only to find the question answered.
    """
    if left_wait is not None:
        _MARK_STALE.run(db.connection(), (now, participant_id, left_wait))
    _insert_ignore(db, session_rows(participant_id, session_id, flow_id, events, now))


# On the webhook's hot path: a driver statement, not a Core expression built per call.
_MARK_STALE = DriverSQL(
    f"UPDATE nudge SET status = '{STALE}', done_at = ? "  # noqa: S608 - constants only
    f"WHERE participant_id = ? AND wait_id = ? AND status = '{PENDING}'")


# ---- cancelling ----------------------------------------------------------------------------


def cancel_pending_nudges(db: Session, participant_id: int, now: datetime) -> int:
    """Cancel everything still to come for a participant (opt-out, erasure); how many.

    The planner brings check-ins and visit reminders back if they opt in again.
    """
    result = db.connection().execute(
        sa.update(_N).where(_N.c.participant_id == participant_id, _N.c.status == PENDING)
        .values(status=CANCELLED, done_at=now))
    return int(result.rowcount or 0)


def cancel_visit_reminders(db: Session, visit_id: int, now: datetime) -> int:
    result = db.connection().execute(
        sa.update(_N).where(_N.c.visit_id == visit_id, _N.c.status == PENDING)
        .values(status=CANCELLED, done_at=now))
    return int(result.rowcount or 0)


# ---- planning ----------------------------------------------------------------------------


@dataclass(slots=True)
class PlanCounts:
    """What one planning pass changed."""

    planned: int = 0  # rows the plan asked for
    added: int = 0  # new rows
    moved: int = 0  # pending rows whose time changed (a new check-in time, new quiet hours)
    revived: int = 0  # cancelled rows made pending again (the participant opted back in)
    errors: int = 0  # participants with a bad zone or time, skipped and logged
    participants: int = 0  # participants read (check-ins)
    last_id: int = 0  # the last participant read, where the next page starts

    def __iadd__(self, other: PlanCounts) -> PlanCounts:
        self.participants += other.participants
        self.last_id = max(self.last_id, other.last_id)
        self.planned += other.planned
        self.added += other.added
        self.moved += other.moved
        self.revived += other.revived
        self.errors += other.errors
        return self


#: What a plan asks for: (dedupe key, due time, what `build` needs to make the row).
_Wanted = tuple[str, datetime, Any]


def _chunks(items: Iterable[_Wanted], size: int) -> Iterator[list[_Wanted]]:
    chunk: list[_Wanted] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _reconcile(db: Session, wanted: Iterable[_Wanted],
               build: Callable[[str, datetime, Any], dict[str, Any]],
               counts: PlanCounts) -> None:
    """Make the table hold what is wanted: insert new keys, move pending rows whose time
    changed, revive cancelled ones. Done, stale and skipped rows are history and stay.

    Rows are only built for new keys: on most passes everything is planned already, and
    the pass is then a read of keys and times.
    """
    conn = db.connection()
    dialect = conn.dialect.name
    for chunk in _chunks(wanted, CHUNK):
        counts.planned += len(chunk)
        # Read as the driver returns it (times too): no per-value processing, see above.
        found = {key: (nid, due, status) for nid, key, due, status
                 in _find(db, [key for key, _due, _extra in chunk])}
        new: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        for key, due, extra in chunk:
            old = found.get(key)
            if old is None:
                new.append(build(key, due, extra))
            elif old[2] == CANCELLED:
                changes.append({"b_id": old[0], "b_due": due})
                counts.revived += 1
            elif old[2] == PENDING and old[1] != _driver_time(dialect, due):
                changes.append({"b_id": old[0], "b_due": due})
                counts.moved += 1
        _insert_ignore(db, new)
        counts.added += len(new)
        if changes:
            conn.execute(
                sa.update(_N)
                .where(_N.c.id == sa.bindparam("b_id"),
                       sa.or_(_N.c.status == PENDING, _N.c.status == CANCELLED))
                .values(due_at=sa.bindparam("b_due"), status=PENDING, claimed_at=None,
                        done_at=None), changes)


def _eligible() -> sa.ColumnElement[bool]:
    return sa.and_(_P.c.consent == consent.OPTED_IN, _P.c.erased_at.is_(None),
                   _P.c.phone.is_not(None))


#: (zone, "HH:MM") -> the check-ins of that slot in the planning window, as
#: (local date, due after quiet hours); or the error that zone or time gives.
Slots = dict[tuple[str, str], "tuple[tuple[str, datetime], ...] | ScheduleError"]


def _slot(zone: str, hhmm: str, now: datetime, end: datetime,
          study: StudySchedule) -> tuple[tuple[str, datetime], ...] | ScheduleError:
    try:
        tz = as_zone(zone)
        return tuple((due.astimezone(tz).date().isoformat(), defer(due, tz, study.quiet))
                     for _one, due in daily_plan([(0, hhmm, zone)], now, end))
    except ScheduleError as exc:
        return exc


def plan_checkins(db: Session, now: datetime, study: StudySchedule,
                  horizon: timedelta = PLAN_HORIZON, *, after_id: int = 0,
                  limit: int | None = None, slots: Slots | None = None) -> PlanCounts:
    """Plan every daily check-in due in [now, now + horizon) for consenting participants
    (those with ids above `after_id`, at most `limit` of them: one page of `plan_all`).

    The times are worked out once per (zone, check-in time) and shared through `slots`
    (across pages too): for 100,000 participants the plan is mostly reading and writing.
    """
    counts = PlanCounts()
    end = now + horizon
    slots = {} if slots is None else slots
    query = (sa.select(_P.c.id, _P.c.checkin_time, _P.c.timezone)
             .where(_eligible(), _P.c.id > after_id).order_by(_P.c.id))
    if limit is not None:
        query = query.limit(limit)
    # Streamed: memory stays flat however many participants a page holds.
    people = db.connection().execute(query.execution_options(yield_per=CHUNK))

    def wanted() -> Iterator[_Wanted]:
        default = study.checkin_time
        for pid, hhmm, zone in people:
            counts.participants += 1
            counts.last_id = pid
            key = (zone or "UTC", hhmm or default)
            dues = slots.get(key)
            if dues is None:
                dues = slots[key] = _slot(key[0], key[1], now, end, study)
            if isinstance(dues, ScheduleError):
                counts.errors += 1
                logs.event(_log, "checkin_not_planned", level=30, participant_id=pid,
                           problem=str(dues))
                continue
            for day, due in dues:
                yield f"checkin:{pid}:{day}", due, pid

    def build(key: str, due: datetime, pid: Any) -> dict[str, Any]:
        return _row(participant_id=pid, kind="checkin", due_at=due, dedupe_key=key, now=now,
                    flow_id=study.checkin_flow)

    _reconcile(db, wanted(), build, counts)
    return counts


def visit_reminder_rows(visit_id: int, participant_id: int, visit_at: datetime, zone: str,
                        study: StudySchedule, now: datetime) -> list[dict[str, Any]]:
    """The reminders still to come for one visit, quiet hours applied."""
    rows = []
    for offset_key, due in reminder_times(visit_at, zone, study.visit_reminders, now,
                                          study.quiet):
        rows.append(_row(participant_id=participant_id, kind="visit_reminder", due_at=due,
                         dedupe_key=visit_key(visit_id, visit_at, offset_key), now=now,
                         flow_id=study.visit_reminder_flow, visit_id=visit_id,
                         params={"visit_at": visit_at.astimezone(UTC).isoformat()}))
    return rows


def plan_visit_reminders(db: Session, now: datetime, study: StudySchedule,
                         visit_ids: Sequence[int] | None = None) -> PlanCounts:
    """Plan the reminders of every scheduled visit still to come (or only of `visit_ids`)."""
    counts = PlanCounts()
    query = (sa.select(_V.c.id, _V.c.participant_id, _V.c.scheduled_at, _P.c.timezone)
             .join(_P, _P.c.id == _V.c.participant_id)
             .where(_V.c.status == "scheduled", _V.c.scheduled_at > now, _eligible())
             .order_by(_V.c.id))
    if visit_ids is not None:
        query = query.where(_V.c.id.in_(list(visit_ids)))
    visits = db.connection().execute(query).all()

    def wanted() -> Iterator[_Wanted]:
        for v in visits:
            try:
                rows = visit_reminder_rows(v.id, v.participant_id, v.scheduled_at,
                                           v.timezone or "UTC", study, now)
            except ScheduleError as exc:
                counts.errors += 1
                logs.event(_log, "visit_reminders_not_planned", level=30, visit_id=v.id,
                           problem=str(exc))
                continue
            for row in rows:
                yield row["dedupe_key"], row["due_at"], row

    _reconcile(db, wanted(), lambda _key, _due, row: dict(row), counts)
    return counts


def plan(db: Session, now: datetime, study: StudySchedule,
         horizon: timedelta = PLAN_HORIZON) -> PlanCounts:
    """One planning pass: check-ins and visit reminders. Idempotent; the caller commits."""
    counts = plan_checkins(db, now, study, horizon)
    counts += plan_visit_reminders(db, now, study)
    return counts


def plan_all(database_url: str, now: datetime, study: StudySchedule, *,
             horizon: timedelta = PLAN_HORIZON, page: int = 10_000) -> PlanCounts:
    """`plan`, one transaction per page of participants: on SQLite the write lock is held
    for a page at a time, so inbound messages never wait for a whole study's plan."""
    total = PlanCounts()
    slots: Slots = {}
    while True:
        with outbox.write_lock(database_url), session_scope(database_url) as db:
            counts = plan_checkins(db, now, study, horizon, after_id=total.last_id, limit=page,
                                   slots=slots)
        total += counts
        if counts.participants < page:
            break
    with outbox.write_lock(database_url), session_scope(database_url) as db:
        total += plan_visit_reminders(db, now, study)
    return total


def due_nudges(db: Session, now: datetime, limit: int = 10_000) -> list[tuple[int, datetime]]:
    """(id, due_at) of pending nudges due at `now`, oldest first."""
    rows = db.connection().execute(
        sa.select(_N.c.id, _N.c.due_at)
        .where(_N.c.status == PENDING, _N.c.due_at <= now)
        .order_by(_N.c.due_at, _N.c.id).limit(limit))
    return [(r.id, r.due_at) for r in rows]


def mark_claimed(db: Session, ids: Sequence[int], now: datetime) -> None:
    """Note when nudges were handed to the workers (for operators; not a lock)."""
    conn = db.connection()
    for start in range(0, len(ids), CHUNK):
        conn.execute(sa.update(_N).where(_N.c.id.in_(list(ids[start:start + CHUNK])))
                     .values(claimed_at=now))


def prune(db: Session, now: datetime, keep: timedelta = KEEP_FINISHED) -> int:
    """Delete finished nudges due more than `keep` ago; how many."""
    result = db.connection().execute(
        sa.delete(_N).where(_N.c.status != PENDING, _N.c.due_at < now - keep))
    return int(result.rowcount or 0)


# ---- firing ------------------------------------------------------------------------------


@dataclass(slots=True)
class Fired:
    """What firing one nudge did. `messages`: (id, due_at) of the outbox rows it made, to
    dispatch once the transaction has committed."""

    outcome: str  # done | stale | skipped | cancelled | failed | postponed | not_due | not_pending
    messages: list[tuple[int, datetime]] = field(default_factory=list)
    due_at: datetime | None = None  # the new due time, when postponed


def _flow_params(params: Mapping[str, Any]) -> dict[str, Any]:
    # Keys starting with "_" are the scheduler's own notes, not the flow's parameters.
    return {k: v for k, v in params.items() if not k.startswith("_")}


def fire(db: Session, nudge_id: int, *, settings: Settings, registry: FlowRegistry,
         now: datetime, study: StudySchedule | None = None) -> Fired:
    """Fire one nudge at `now`, in the caller's transaction. Idempotent: a nudge that is
    no longer pending (fired by a duplicate job, cancelled, ...) is left alone."""
    conn = db.connection()
    head = conn.execute(sa.select(_N.c.participant_id, _N.c.status)
                        .where(_N.c.id == nudge_id)).first()
    if head is None or head.status != PENDING:
        return Fired("not_pending")
    # The participant first, then the nudge: the webhook's order (it locks the participant
    # and then writes nudges), so the two can never deadlock.
    p = conversation._lock_participant(db, head.participant_id)
    nudge = conn.execute(sa.select(_N).where(_N.c.id == nudge_id).with_for_update()).first()
    if nudge is None or nudge.status != PENDING:
        return Fired("not_pending")
    if nudge.due_at > now:
        return Fired("not_due")
    if p is None or not consent.may_message(p):
        return _finish(db, nudge, CANCELLED, now)
    study = study or load_study_schedule(settings.flows_dir)
    try:
        if nudge.kind == "timeout":
            return _fire_timeout(db, nudge, p, settings, registry, now, study)
        return _fire_start(db, nudge, p, settings, registry, now, study)
    except sa.exc.SQLAlchemyError:
        raise  # most likely transient: the job fails and runs again
    except Exception as exc:  # noqa: BLE001 - a flow or session that cannot run
        # Running again would fail the same way: record it and tell the team through the log.
        logs.event(_log, "nudge_failed", level=40, nudge_id=nudge.id, kind=nudge.kind,
                   flow=nudge.flow_id, error=type(exc).__name__, participant=p.code)
        return _finish(db, nudge, FAILED, now)


def _finish(db: Session, nudge: Any, status: str, now: datetime,
            messages: list[tuple[int, datetime]] | None = None) -> Fired:
    db.connection().execute(sa.update(_N).where(_N.c.id == nudge.id)
                            .values(status=status, done_at=now))
    return Fired(status, messages or [])


def _postpone(db: Session, nudge: Any, params: dict[str, Any], to: datetime,
              reason: str) -> Fired:
    params.setdefault("_first_due", nudge.due_at.astimezone(UTC).isoformat())
    db.connection().execute(
        sa.update(_N).where(_N.c.id == nudge.id)
        .values(due_at=to, claimed_at=None, params_json=json.dumps(params, sort_keys=True)))
    logs.event(_log, "nudge_postponed", nudge_id=nudge.id, kind=nudge.kind, reason=reason,
               due_at=to.isoformat())
    return Fired("postponed", due_at=to)


def _first_due(nudge: Any, params: Mapping[str, Any]) -> datetime:
    first = params.get("_first_due")
    return datetime.fromisoformat(first) if isinstance(first, str) else nudge.due_at


def _waiting_session(db: Session, participant_id: int) -> Any:
    return db.connection().execute(
        sa.select(_S.c.id, _S.c.flow_id, _S.c.updated_at)
        .where(_S.c.participant_id == participant_id, _S.c.status == "waiting")
        .order_by(_S.c.updated_at.desc()).limit(1)).first()


def _fire_start(db: Session, nudge: Any, p: Participant, settings: Settings,
                registry: FlowRegistry, now: datetime, study: StudySchedule) -> Fired:
    """Check-ins, visit reminders and follow-ups: start a flow, unless it is not the time."""
    params = json.loads(nudge.params_json or "{}")
    flow_id = nudge.flow_id or (study.checkin_flow if nudge.kind == "checkin"
                                else study.visit_reminder_flow)
    visit_at: datetime | None = None
    if nudge.kind == "visit_reminder":
        visit = db.connection().execute(
            sa.select(_V.c.status, _V.c.scheduled_at).where(_V.c.id == nudge.visit_id)).first()
        visit_at = datetime.fromisoformat(params.get("visit_at", ""))
        # A reminder for a visit that moved, was done or was cancelled is no longer true.
        if visit is None or visit.status != "scheduled" or visit.scheduled_at != visit_at \
                or visit_at <= now:
            return _finish(db, nudge, STALE, now)
    limit = _first_due(nudge, params) + MAX_DELAY.get(nudge.kind, timedelta(hours=4))
    if visit_at is not None:
        limit = min(limit, visit_at)
    zone = p.timezone or "UTC"

    # Quiet hours: a conversation must not start when its messages would wait for morning
    # and its re-prompts pile up behind them. Start it when quiet hours end.
    allowed = defer(now, zone, study.quiet)
    if allowed != now:
        if allowed > limit and nudge.kind != "follow_up":
            return _skip(db, nudge, now, "quiet_hours")
        return _postpone(db, nudge, params, allowed, "quiet_hours")

    # One conversation at a time. An open question of the same flow (yesterday's check-in,
    # an earlier reminder) is replaced; one of another flow that the participant is still
    # in holds this nudge back for a while; an abandoned one does not.
    assert p.id is not None
    open_session = _waiting_session(db, p.id)
    if open_session is not None and open_session.flow_id != flow_id \
            and open_session.updated_at > now - ABANDONED_AFTER:
        retry = now + BUSY_RETRY
        if retry <= limit:
            return _postpone(db, nudge, params, retry, "in_conversation")
        if nudge.kind != "follow_up":
            return _skip(db, nudge, now, "in_conversation")
        # A follow-up is owed to the participant: after waiting its time, it goes ahead.

    # Every session of theirs is about to be interrupted: their re-prompts are moot.
    db.connection().execute(
        sa.update(_N).where(_N.c.participant_id == p.id, _N.c.kind == "timeout",
                            _N.c.status == PENDING)
        .values(status=STALE, done_at=now))
    messages = conversation.start_flow(db, p, flow_id, now, _flow_params(params),
                                       settings=settings, registry=registry)
    sent = _to_outbox(db, messages, zone, study, now, purpose=nudge.kind)
    logs.event(_log, "nudge_fired", nudge_id=nudge.id, kind=nudge.kind, flow=flow_id,
               messages=len(sent), participant=p.code)
    return _finish(db, nudge, DONE, now, sent)


def _skip(db: Session, nudge: Any, now: datetime, reason: str) -> Fired:
    logs.event(_log, "nudge_skipped", nudge_id=nudge.id, kind=nudge.kind, reason=reason)
    return _finish(db, nudge, SKIPPED, now)


def _fire_timeout(db: Session, nudge: Any, p: Participant, settings: Settings,
                  registry: FlowRegistry, now: datetime, study: StudySchedule) -> Fired:
    """Re-prompt or give up on a waiting question; a no-op if the session moved on."""
    row = db.connection().execute(
        sa.select(_S.c.id, _S.c.flow_id, _S.c.flow_version, _S.c.status, _S.c.wait_id,
                  _S.c.state_json).where(_S.c.id == nudge.session_id)).first()
    if row is None or row.status != "waiting" or row.wait_id != nudge.wait_id:
        return _finish(db, nudge, STALE, now)
    params = json.loads(nudge.params_json or "{}")
    zone = p.timezone or "UTC"
    if params.get("due") == "reprompt":
        # A re-prompt at night would wait for morning anyway, and the next one would pile
        # up behind it: ask again when quiet hours end (a give-up still happens on time).
        allowed = defer(now, zone, study.quiet)
        if allowed != now:
            return _postpone(db, nudge, params, allowed, "quiet_hours")
    flow = registry.version(db, row.flow_id, row.flow_version)
    before = es.Session.from_json(row.state_json)
    who = conversation._Who.of(p)
    catalogs = conversation.catalogs_for(settings)
    after, events = runner.resume(flow, before, who.engine(), runner.Timeout(nudge.wait_id),
                                  now, catalogs)
    if not events:
        return _finish(db, nudge, STALE, now)  # already re-prompted (a duplicate nudge)
    delivery = conversation._Delivery(channel=p.channel,
                                      sender=conversation._sender(settings, p.channel),
                                      outbox=True, kind="nudge")
    step = conversation._Step(db, settings, who,
                              conversation._SessionRef(row.id, row.flow_id, row.flow_version),
                              before, after, events, now, delivery, catalogs)
    conversation._apply(step)
    db.flush()
    sent = _to_outbox(db, step.outbox, zone, study, now, purpose=params.get("due"))
    logs.event(_log, "nudge_fired", nudge_id=nudge.id, kind=nudge.kind, flow=row.flow_id,
               due=params.get("due"), messages=len(sent), participant=p.code)
    return _finish(db, nudge, DONE, now, sent)


def _to_outbox(db: Session, messages: Sequence[Message], zone: str, study: StudySchedule,
               now: datetime, purpose: str | None = None) -> list[tuple[int, datetime]]:
    """Quiet hours on the way out: a message is held until they end, never dropped.
    Safety messages are exempt. `purpose` picks the WhatsApp template used outside the
    24-hour window (bot/templates.py): the nudge's kind, or reprompt / give_up."""
    for msg in messages:
        urgent = msg.kind == "safety" or msg.urgent
        msg.urgent = urgent
        if purpose and not msg.purpose:
            msg.purpose = purpose
        msg.due_at = defer(msg.due_at or now, zone, study.quiet, urgent=urgent)
        db.add(msg)
    db.flush()
    return [(msg.id, msg.due_at or now) for msg in messages if msg.id is not None]
