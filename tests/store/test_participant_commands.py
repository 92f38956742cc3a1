"""`bot participants add | list | export` against both databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from click.testing import Result
from sqlmodel import Session, select

from bot.store.models import (
    Answer,
    AuditEntry,
    ConversationSession,
    Escalation,
    Message,
    Participant,
    Visit,
)
from bot.store.types import utcnow

Cli = Callable[..., Result]


def _participant(db: Session, code: str) -> Participant:
    db.expire_all()
    return db.exec(select(Participant).where(Participant.code == code)).one()


def test_add_normalises_and_audits(cli: Cli, db: Session) -> None:
    result = cli("participants", "add", "--phone", "(415) 555-2671", "--region", "us",
                 "--code", "P001", "--language", "es-MX", "--timezone", "America/Chicago",
                 "--channel", "whatsapp", "--checkin-time", "9:30", "--actor", "ana")
    assert result.exit_code == 0, result.output
    assert result.output == ("enrolled P001 (id 1): +14*******71 by whatsapp, es, "
                             "America/Chicago, check-in 09:30\n")
    p = _participant(db, "P001")
    assert (p.phone, p.language, p.timezone, p.channel, p.checkin_time, p.consent) == (
        "+14155552671", "es", "America/Chicago", "whatsapp", "09:30", "opted_in")
    entry = db.exec(select(AuditEntry)).one()
    assert (entry.actor, entry.action, entry.entity_id) == ("staff:ana", "participant.add", "1")
    assert "+14155552671" not in (entry.new_json or "")  # the trail outlives erasure


def test_add_defaults(cli: Cli, db: Session) -> None:
    assert cli("participants", "add", "--phone", "+447911123456", "--code", "UK-7").exit_code == 0
    p = _participant(db, "UK-7")
    assert (p.language, p.timezone, p.channel, p.checkin_time) == ("en", "UTC", "sms", None)
    actor = db.exec(select(AuditEntry.actor)).one()
    assert actor.startswith("staff:") and len(actor) > len("staff:")


def test_add_reports_every_problem(cli: Cli, db: Session) -> None:
    result = cli("participants", "add", "--phone", "555-01", "--code", "bad code",
                 "--language", "klingon", "--timezone", "Mars/Olympus", "--checkin-time", "25:00")
    assert result.exit_code == 1
    for problem in ('phone "555-01" is not a valid phone number',
                    'code "bad code" must be 1-40 letters',
                    'language "klingon" is not supported',
                    'timezone "Mars/Olympus" is not an IANA time zone',
                    'check-in time "25:00" must be HH:MM'):
        assert problem in result.stderr
    assert "--region" in result.stderr
    assert db.exec(select(Participant)).all() == []
    assert db.exec(select(AuditEntry)).all() == []


def test_add_refuses_a_taken_code_or_phone(cli: Cli, db: Session) -> None:
    assert cli("participants", "add", "--phone", "+14155552671", "--code", "P1").exit_code == 0
    result = cli("participants", "add", "--phone", "+1 415 555 2671", "--code", "P1")
    assert result.exit_code == 1
    assert 'code "P1" is already enrolled' in result.stderr
    assert 'phone "+14155552671" is already enrolled' in result.stderr
    result = cli("participants", "add", "--phone", "+14155552672", "--code", "ps-123")
    assert result.exit_code == 1 and "kept for erased participants" in result.stderr
    assert len(db.exec(select(Participant)).all()) == 1


def test_add_rejects_an_unknown_region(cli: Cli) -> None:
    result = cli("participants", "add", "--phone", "5552671", "--code", "P1", "--region", "XX")
    assert result.exit_code == 2 and "--region" in result.output


def test_list_masks_phones(cli: Cli) -> None:
    assert cli("participants", "list").output == "no participants\n"
    cli("participants", "add", "--phone", "+14155552671", "--code", "P1", "--timezone",
        "America/New_York")
    cli("participants", "add", "--phone", "+447911123456", "--code", "P2", "--channel",
        "whatsapp", "--checkin-time", "08:00")
    result = cli("participants", "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "CODE", "PHONE", "CHANNEL", "LANG", "TIMEZONE",
                                "CONSENT", "CHECK-IN"]
    assert lines[1].split() == ["1", "P1", "+14*******71", "sms", "en", "America/New_York",
                                "opted_in", "-"]
    assert lines[2].split() == ["2", "P2", "+44********56", "whatsapp", "en", "UTC",
                                "opted_in", "08:00"]
    assert "4155552671" not in result.output


def _history(db: Session, p: Participant) -> None:
    now = utcnow()
    assert p.id is not None
    inbound = Message(participant_id=p.id, direction="in", address=p.phone, body="yes I did",
                      status="received")
    db.add(inbound)
    db.flush()
    db.add(Message(participant_id=p.id, direction="out", address=p.phone, body="Thanks!",
                   status="sent", reply_to_id=inbound.id))
    db.add(Message(participant_id=None, direction="in", address=p.phone, body="hello?",
                   status="received"))  # from before enrolment: matched by number
    db.add(Message(participant_id=None, direction="in", address="+14155550000", body="other",
                   status="received"))
    db.add(Visit(participant_id=p.id, name="Week 4", scheduled_at=now + timedelta(days=3)))
    db.add(ConversationSession(id="s1", participant_id=p.id, flow_id="daily_checkin",
                               flow_version=1, status="waiting", state_json='{"step": "q1"}'))
    db.add(Answer(participant_id=p.id, session_id="s1", flow_id="daily_checkin",
                  flow_version=1, translation_revision="r1", language="en", step="q1",
                  key="took_dose", answer_type="yes_no", value_json="true",
                  message_id=inbound.id))
    db.add(Escalation(code="E1", participant_id=p.id, severity="high", reason="chest_pain",
                      resolution_note="called, all fine"))
    db.commit()


def test_export_holds_everything_about_the_participant(cli: Cli, db: Session) -> None:
    cli("participants", "add", "--phone", "+14155552671", "--code", "P1")
    cli("participants", "add", "--phone", "+14155552672", "--code", "P2")
    _history(db, _participant(db, "P1"))
    result = cli("participants", "export", "P1", "--actor", "ana")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["participant"]["phone"] == "+14155552671"
    assert data["participant"]["fields"] == {}
    assert [c["state"] for c in data["consent_history"]] == ["opted_in"]
    assert [v["name"] for v in data["visits"]] == ["Week 4"]
    assert data["sessions"][0]["state"] == {"step": "q1"}
    assert [m["body"] for m in data["messages"]] == ["yes I did", "Thanks!", "hello?"]
    assert data["answers"][0]["value"] is True
    assert data["escalations"][0]["resolution_note"] == "called, all fine"
    assert [a["action"] for a in data["audit"]] == ["participant.add"]
    # The export itself is a staff action on the participant's data.
    entry = db.exec(select(AuditEntry).order_by(AuditEntry.id.desc())).first()  # type: ignore[union-attr]
    assert entry is not None
    assert (entry.actor, entry.action, entry.entity_id) == ("staff:ana", "participant.export", "1")


def test_export_finds_by_id_and_to_a_file(cli: Cli, tmp_path: Path) -> None:
    cli("participants", "add", "--phone", "+14155552671", "--code", "P1")
    out = tmp_path / "p1.json"
    result = cli("participants", "export", "1", "-o", str(out))
    assert result.exit_code == 0
    assert json.loads(out.read_text())["participant"]["code"] == "P1"
    result = cli("participants", "export", "P9")
    assert result.exit_code == 1 and 'no participant "P9"' in result.stderr
