"""Scheduling fixtures: participants, a simulated clock that plans and fires nudges."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot import nudges, participants
from bot.config import Settings
from bot.flow_registry import FlowRegistry
from bot.store.db import get_engine, session_scope
from bot.store.models import ConversationSession, Message, Nudge, Participant

ROOT = Path(__file__).resolve().parents[2]
LA = ZoneInfo("America/Los_Angeles")

#: A flow whose unanswered question gives up after 12 hours with a message: a give-up that
#: lands in quiet hours.
LATE_FLOW = """\
spec: 1
id: late_question
version: 1
name: Late question
steps:
  - id: q
    ask: Did you sleep well? Reply YES or NO.
    answer: yes_no
    give_up_after: 12h
    on_give_up: missed
  - id: thanks
    end: completed
    send: Thank you.
  - id: missed
    end: expired
    send: We missed your answer today. We will ask again tomorrow.
"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def la(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=LA, fold=fold).astimezone(UTC)


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    target.mkdir()
    for path in (ROOT / "flows").glob("*.yaml"):
        shutil.copy(path, target / path.name)
    (target / "late_question.yaml").write_text(LATE_FLOW, encoding="utf-8")
    return target


@pytest.fixture
def sched_settings(settings: Settings, flows_dir: Path) -> Settings:
    return replace(settings, flows_dir=str(flows_dir))


@pytest.fixture
def study() -> nudges.StudySchedule:
    return nudges.StudySchedule()


def enrol(url: str, code: str = "P-001", phone: str = "+15555550123",
          timezone: str = "America/Los_Angeles", checkin_time: str | None = "08:30",
          language: str = "en") -> int:
    with session_scope(url) as db:
        p = participants.add(db, actor="staff:test", phone=phone, code=code,
                             language=language, timezone=timezone, checkin_time=checkin_time)
        assert p.id is not None
        return p.id


@dataclass
class Clock:
    """Plans and fires nudges at explicit times, the way the scheduler and workers would."""

    settings: Settings
    study: nudges.StudySchedule
    registry: FlowRegistry
    fired: list[tuple[datetime, int, str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.settings.database_url

    def plan(self, now: datetime) -> nudges.PlanCounts:
        with session_scope(self.url) as db:
            return nudges.plan(db, now, self.study)

    def fire(self, nudge_id: int, now: datetime) -> nudges.Fired:
        with session_scope(self.url) as db:
            kind = db.get(Nudge, nudge_id)
            fired = nudges.fire(db, nudge_id, settings=self.settings, registry=self.registry,
                                now=now, study=self.study)
        self.fired.append((now, nudge_id, kind.kind if kind else "?", fired.outcome))
        return fired

    def fire_due(self, now: datetime) -> list[nudges.Fired]:
        out: list[nudges.Fired] = []
        for _ in range(100):  # firing may make more nudges due at once (never endless)
            with session_scope(self.url) as db:
                due = nudges.due_nudges(db, now)
            if not due:
                return out
            out.extend(self.fire(nid, now) for nid, _at in due)
        raise AssertionError("nudges kept coming due")

    def next_due(self) -> datetime | None:
        with session_scope(self.url) as db:
            return db.exec(select(sa.func.min(Nudge.due_at))
                           .where(Nudge.status == "pending")).one()

    def run(self, start: datetime, end: datetime,
            plan_every: timedelta = timedelta(hours=6)) -> None:
        """Jump from one due time to the next, planning every `plan_every`."""
        now, next_plan = start, start
        while now < end:
            if now >= next_plan:
                self.plan(now)
                next_plan = now + plan_every
            self.fire_due(now)
            later = [t for t in (self.next_due(), next_plan, end) if t is not None and t > now]
            now = min(later) if later else end


@pytest.fixture
def clock(sched_settings: Settings, study: nudges.StudySchedule) -> Clock:
    return Clock(sched_settings, study, FlowRegistry(sched_settings.flows_dir))


def nudge_rows(url: str, **where: object) -> list[Nudge]:
    with Session(get_engine(url), expire_on_commit=False) as db:
        query = select(Nudge).order_by(col(Nudge.due_at), col(Nudge.id))
        for name, value in where.items():
            query = query.where(getattr(Nudge, name) == value)
        rows = list(db.exec(query).all())
    return rows


def outbound(url: str, participant_id: int | None = None) -> list[Message]:
    with Session(get_engine(url), expire_on_commit=False) as db:
        query = select(Message).where(Message.direction == "out").order_by(col(Message.id))
        if participant_id is not None:
            query = query.where(Message.participant_id == participant_id)
        rows = list(db.exec(query).all())
    return rows


def sessions(url: str, participant_id: int) -> list[ConversationSession]:
    with Session(get_engine(url), expire_on_commit=False) as db:
        rows = list(db.exec(select(ConversationSession)
                            .where(ConversationSession.participant_id == participant_id)
                            .order_by(col(ConversationSession.created_at))).all())
    return rows


def params(n: Nudge) -> dict[str, object]:
    return json.loads(n.params_json)


def participant(url: str, pid: int) -> Participant:
    with Session(get_engine(url), expire_on_commit=False) as db:
        p = db.get(Participant, pid)
    assert p is not None
    return p


@pytest.fixture
def pid(settings: Settings) -> Iterator[int]:
    yield enrol(settings.database_url)
