"""Starting flows from the command line: `add|import --start FLOW` and `participants start`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from redis import Redis
from rq import Queue
from sqlmodel import Session, col, select

from bot import nudges, outbox, participants
from bot.cli import main
from bot.config import Settings
from bot.flow_registry import FlowRegistry
from bot.store.db import session_scope
from bot.store.models import AuditEntry, ConversationSession, Message, Nudge, Participant

Cli = Callable[..., Result]
HEADER = "code,phone,language,timezone,channel,checkin_time\n"
WELCOME = "Hello! This is your study team."
CONSENT = "Is it OK for us to send you text messages during the study?"


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _done(db: Session) -> None:
    """End the reading transaction (on SQLite it holds the write lock); the rows read stay
    readable, detached, instead of being reloaded in a new transaction."""
    db.expunge_all()
    db.rollback()


def _outbox(db: Session, participant_id: int | None = None) -> list[Message]:
    db.expire_all()
    query = select(Message).where(Message.direction == "out")
    if participant_id is not None:
        query = query.where(Message.participant_id == participant_id)
    rows = list(db.exec(query.order_by(col(Message.id))).all())
    _done(db)
    return rows


def _sessions(db: Session, participant_id: int) -> list[tuple[str, str]]:
    db.expire_all()
    rows = db.exec(select(ConversationSession.flow_id, ConversationSession.status)
                   .where(ConversationSession.participant_id == participant_id)
                   .order_by(col(ConversationSession.created_at))).all()
    _done(db)
    return [(f, s) for f, s in rows]


def _starts(db: Session) -> list[AuditEntry]:
    db.expire_all()
    rows = list(db.exec(select(AuditEntry).where(AuditEntry.action == "participant.flow_started")
                        .order_by(col(AuditEntry.id))).all())
    _done(db)
    return rows


def _queued_ids(redis_url: str) -> list[int]:
    redis = Redis.from_url(redis_url)
    try:
        return sorted(i for job in Queue(outbox.QUEUE, connection=redis).jobs
                      for i in job.args[0])
    finally:
        redis.close()


def _id(db: Session, code: str) -> int:
    db.expire_all()
    pid = db.exec(select(Participant.id).where(Participant.code == code)).one()
    _done(db)
    assert pid is not None
    return pid


def _enrol(cli: Cli, *codes: str) -> None:
    for n, code in enumerate(codes):
        result = cli("participants", "add", "--phone", f"+1415555{2671 + n:04d}", "--code", code)
        assert result.exit_code == 0, result.output


def _opt_out(settings: Settings, code: str) -> None:
    with session_scope(settings.database_url) as s:
        p = s.exec(select(Participant).where(Participant.code == code)).one()
        participants.set_consent(s, p, "opted_out", source="keyword",
                                 actor=f"participant:{code}")


@pytest.fixture(autouse=True)
def midday(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Starts happen at 18:00 UTC yesterday (noon in Chicago): outside the participants'
    quiet hours whenever the suite runs, and in the past, so the send jobs are due at once."""
    at = (datetime.now(UTC) - timedelta(days=1)).replace(hour=18, minute=0, second=0,
                                                         microsecond=0)
    monkeypatch.setattr("bot.flow_start.utcnow", lambda: at)
    return at


# ---- add / import --start ------------------------------------------------------------------


def test_add_with_start_puts_the_first_messages_in_the_outbox(cli: Cli, db: Session,
                                                              redis_url: str) -> None:
    result = cli("participants", "add", "--phone", "+14155552671", "--code", "P1",
                 "--start", "onboarding", "--actor", "ana")
    assert result.exit_code == 0, result.output
    assert "enrolled P1 (id 1)" in result.stdout
    assert "started onboarding v2 for 1 participant; 2 messages queued for sending" \
        in result.stdout
    rows = _outbox(db, 1)
    assert [(m.status, m.kind, m.step) for m in rows] == [("pending", "nudge", "welcome"),
                                                           ("pending", "nudge", "consent")]
    assert [(m.body or "")[:len(t)] for m, t in zip(rows, (WELCOME, CONSENT), strict=True)] \
        == [WELCOME, CONSENT]
    assert _sessions(db, 1) == [("onboarding", "waiting")]
    assert _queued_ids(redis_url) == [m.id for m in rows]
    (entry,) = _starts(db)
    assert (entry.actor, entry.entity, entry.entity_id, entry.stream) == (
        "staff:ana", "participant", "1", "participant:1")
    new = json.loads(entry.new_json or "{}")
    assert (new["flow_id"], new["flow_version"], new["messages"], new["interrupted"]) == (
        "onboarding", 2, 2, [])
    assert new["session_id"] == rows[0].session_id


def test_import_with_start_starts_one_per_new_row(cli: Cli, db: Session, tmp_path: Path,
                                                  redis_url: str) -> None:
    _enrol(cli, "OLD1")  # enrolled earlier: left alone
    path = _csv(tmp_path, HEADER + "P1,+14155552681,es,America/Chicago,,\n"
                + "P2,+14155552682,,,,\n")
    result = cli("participants", "import", path, "--start", "onboarding", "--actor", "ana")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == [
        "imported 2 participants from people.csv",
        "started onboarding v2 for 2 participants; 4 messages queued for sending"]
    old, p1, p2 = _id(db, "OLD1"), _id(db, "P1"), _id(db, "P2")
    assert _outbox(db, old) == [] and _sessions(db, old) == []
    for pid in (p1, p2):
        assert len(_outbox(db, pid)) == 2
        assert _sessions(db, pid) == [("onboarding", "waiting")]
    # Spanish for P1: the flow speaks the participant's language from the first message.
    assert _outbox(db, p1)[0].language == "es"
    assert [e.entity_id for e in _starts(db)] == [str(p1), str(p2)]
    assert len(_queued_ids(redis_url)) == 4


@pytest.mark.parametrize("flow", ["nope", "visit_reminder"])
def test_a_flow_that_cannot_start_imports_nothing(cli: Cli, db: Session, tmp_path: Path,
                                                  flow: str) -> None:
    path = _csv(tmp_path, HEADER + "P1,+14155552681,,,,\n")
    result = cli("participants", "import", path, "--start", flow)
    assert result.exit_code == 1
    problem = ('no valid flow "nope"' if flow == "nope"
               else 'flow "visit_reminder" needs values the scheduler gives it (visit_at)')
    assert problem in result.stderr
    assert "Nothing was imported." in result.stderr
    result = cli("participants", "add", "--phone", "+14155552682", "--code", "P2",
                 "--start", flow)
    assert result.exit_code == 1 and problem in result.stderr
    assert db.exec(select(Participant)).all() == []
    assert db.exec(select(AuditEntry)).all() == []
    assert db.exec(select(Message)).all() == []


# ---- participants start ---------------------------------------------------------------------


def test_start_refuses_opted_out_and_erased_participants(cli: Cli, db: Session,
                                                         settings: Settings,
                                                         redis_url: str) -> None:
    _enrol(cli, "P1", "P2", "P3")
    p1, p2, p3 = _id(db, "P1"), _id(db, "P2"), _id(db, "P3")
    _opt_out(settings, "P2")
    assert cli("participants", "erase", "P3", "--yes").exit_code == 0
    result = cli("participants", "start", "onboarding", "P1", "P2", str(p3), "--actor", "ana")
    assert result.exit_code == 1
    assert f"error: P2 (id {p2}) has opted out: onboarding not started" in result.stderr
    assert f"(id {p3}) was erased on " in result.stderr
    assert "P1: started onboarding v2 (2 messages" in result.stdout
    assert "started onboarding v2 for 1 participant, 2 refused; 2 messages queued" \
        in result.stdout
    assert [m.participant_id for m in _outbox(db)] == [p1, p1]
    assert _sessions(db, p2) == [] and _sessions(db, p3) == []
    assert [e.entity_id for e in _starts(db)] == [str(p1)]


def test_start_interrupts_a_waiting_conversation(cli: Cli, db: Session, redis_url: str) -> None:
    _enrol(cli, "P1")
    pid = _id(db, "P1")
    assert cli("participants", "start", "onboarding", "P1").exit_code == 0
    result = cli("participants", "start", "symptom_questionnaire", "P1")
    assert result.exit_code == 0, result.output
    assert "interrupted onboarding" in result.stdout
    assert _sessions(db, pid) == [("onboarding", "interrupted"),
                                  ("symptom_questionnaire", "waiting")]
    second = json.loads(_starts(db)[1].new_json or "{}")
    assert (second["flow_id"], second["interrupted"]) == ("symptom_questionnaire",
                                                          ["onboarding"])


def test_start_all_new_skips_who_had_a_conversation_or_opted_out(
        cli: Cli, db: Session, settings: Settings, redis_url: str) -> None:
    _enrol(cli, "P1", "P2", "P3")
    _opt_out(settings, "P3")
    assert cli("participants", "start", "onboarding", "P1").exit_code == 0
    result = cli("participants", "start", "onboarding", "--all-new", input="n\n")
    assert result.exit_code == 1  # aborted at the question: nothing started
    assert "for 1 participant who never had a conversation?" in result.output
    assert len(_starts(db)) == 1
    result = cli("participants", "start", "onboarding", "--all-new", "--yes")
    assert result.exit_code == 0, result.output
    p2, p3 = _id(db, "P2"), _id(db, "P3")
    assert f"P3 (id {p3}) has opted out: skipped" in result.stdout
    assert "P2: started onboarding v2" in result.stdout
    assert [e.entity_id for e in _starts(db)][1:] == [str(p2)]
    again = cli("participants", "start", "onboarding", "--all-new", "--yes")
    assert again.exit_code == 0
    assert "nothing started" in again.stdout
    assert len(_starts(db)) == 2


def test_start_with_an_unknown_code_starts_nobody(cli: Cli, db: Session) -> None:
    _enrol(cli, "P1")
    result = cli("participants", "start", "onboarding", "P1", "P9")
    assert result.exit_code == 1
    assert 'error: no participant "P9"' in result.stderr
    assert "Nothing was started." in result.stderr
    assert _outbox(db) == [] and _starts(db) == []


@pytest.mark.parametrize("args", [(), ("P1", "--all-new")])
def test_start_needs_participants_or_all_new(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli("participants", "start", "onboarding", *args)
    assert result.exit_code == 2
    assert "name the participants, or give --all-new" in result.stderr


def test_without_redis_the_messages_wait_for_the_sweep(cli: Cli, db: Session,
                                                       settings: Settings) -> None:
    _enrol(cli, "P1")
    no_redis = replace(settings, redis_url="redis://127.0.0.1:1/0")
    result = CliRunner().invoke(main, ["participants", "start", "onboarding", "P1"],
                                obj=no_redis, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert ("started onboarding v2 for 1 participant; 2 messages wait in the outbox: Redis did "
            "not answer") in result.stdout
    assert "the scheduler's outbox sweep will queue them" in result.stdout
    assert [m.status for m in _outbox(db)] == ["pending", "pending"]
    assert len(_starts(db)) == 1


def test_in_quiet_hours_the_flow_is_scheduled_for_when_they_end(
        cli: Cli, db: Session, redis_url: str, midday: datetime, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    night = midday.replace(hour=23)
    monkeypatch.setattr("bot.flow_start.utcnow", lambda: night)
    result = cli("participants", "add", "--phone", "+14155552671", "--code", "P1",
                 "--start", "onboarding", "--actor", "ana")
    assert result.exit_code == 0, result.output
    morning = (night + timedelta(days=1)).replace(hour=8)
    assert ("started onboarding v2 for 0 participants, 1 scheduled for when their quiet "
            "hours end; 0 messages queued for sending") in result.stdout
    # Nothing started, nothing in the outbox: the re-prompt clock has not begun.
    assert _outbox(db, 1) == [] and _sessions(db, 1) == [] and _starts(db) == []
    db.expire_all()
    (nudge,) = db.exec(select(Nudge).where(Nudge.participant_id == 1)).all()
    assert (nudge.kind, nudge.flow_id, nudge.status) == ("follow_up", "onboarding", "pending")
    assert nudge.due_at == morning
    (entry,) = db.exec(select(AuditEntry)
                       .where(AuditEntry.action == "participant.flow_scheduled")).all()
    assert entry.actor == "staff:ana"
    assert json.loads(entry.new_json or "{}")["due_at"] == morning.isoformat()
    nudge_id = nudge.id
    _done(db)

    # `participants start` says so per participant.
    assert cli("participants", "add", "--phone", "+14155552699", "--code", "P2").exit_code == 0
    result = cli("participants", "start", "onboarding", "P2")
    assert f"P2: onboarding v2 starts when quiet hours end, {morning:%Y-%m-%d} 08:00 local" \
        in result.stdout

    # In the morning the scheduler starts it: its messages and its clock begin then.
    with session_scope(settings.database_url) as s:
        fired = nudges.fire(s, nudge_id, settings=settings,
                            registry=FlowRegistry(settings.flows_dir), now=morning)
    assert fired.outcome == "done" and len(fired.messages) == 2
    assert _sessions(db, 1) == [("onboarding", "waiting")]
    assert [m.step for m in _outbox(db, 1)] == ["welcome", "consent"]
