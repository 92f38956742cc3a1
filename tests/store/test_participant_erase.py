"""`bot participants erase`: stop contact, delete what identifies, keep protocol data."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

from click.testing import Result
from sqlmodel import Session, select

from bot import audit, participants
from bot.config import Settings
from bot.participants_io import pseudonym
from bot.store.models import (
    Answer,
    AuditEntry,
    ConsentChange,
    ConversationSession,
    Escalation,
    Message,
    Nudge,
    Participant,
    Visit,
)

Cli = Callable[..., Result]
Converse = Callable[..., int]  # the `converse` fixture (conftest.py)
PHONE = "+14155552671"


def _enrolled_with_history(cli: Cli, db: Session) -> Participant:
    assert cli("participants", "add", "--phone", PHONE, "--code", "P1").exit_code == 0
    assert cli("participants", "add", "--phone", "+14155552672", "--code", "P2").exit_code == 0
    p = db.exec(select(Participant).where(Participant.code == "P1")).one()
    # Audited: the entry must not keep the name after erasure.
    participants.update(db, p, actor="staff:test", fields={"first_name": "Ana", "arm": "B"},
                        secret_key="test-secret-key")
    assert p.id is not None
    inbound = Message(participant_id=p.id, direction="in", address=PHONE,
                      body="my chest hurts", status="received")
    db.add(inbound)
    db.flush()
    for status in ("sent", "pending", "queued", "delivered"):
        db.add(Message(participant_id=p.id, direction="out", address=PHONE, body=f"m {status}",
                       status=status, kind="nudge"))
    # Accepted by Twilio, not yet reported on: past stopping, so its status stays.
    db.add(Message(participant_id=p.id, direction="out", address=PHONE, body="m accepted",
                   status="queued", kind="nudge", twilio_sid="SM" + "b" * 32))
    db.add(Message(participant_id=None, direction="in", address=f"whatsapp:{PHONE}",
                   body="hola?", status="received", channel="whatsapp"))
    other = db.exec(select(Participant).where(Participant.code == "P2")).one()
    db.add(Message(participant_id=other.id, direction="out", address=other.phone, body="hi P2",
                   status="pending"))
    db.add(ConversationSession(id="s-open", participant_id=p.id, flow_id="daily_checkin",
                               flow_version=1, status="waiting", wait_id="w1",
                               state_json='{"answers": {"how": "tired"}}'))
    db.add(ConversationSession(id="s-done", participant_id=p.id, flow_id="daily_checkin",
                               flow_version=1, status="completed", state_json='{"x": 1}'))
    for key, kind, value in (("took_dose", "yes_no", "true"), ("pain", "number", "7"),
                             ("how", "text", '"tired and sad"')):
        db.add(Answer(participant_id=p.id, session_id="s-open", flow_id="daily_checkin",
                      flow_version=1, translation_revision="r1", language="en", step=key,
                      key=key, answer_type=kind, value_json=value, message_id=inbound.id))
    db.add(Escalation(code="E1", participant_id=p.id, severity="high", reason="chest_pain",
                      state="resolved", resolution_note="spoke to Ana at home"))
    db.add(Visit(participant_id=p.id, name="Week 4",
                 scheduled_at=inbound.created_at))
    db.add(Nudge(participant_id=p.id, kind="checkin", dedupe_key="checkin:erase-test",
                 due_at=inbound.created_at, status="pending"))
    db.commit()
    return p


def test_erase_removes_identifying_data_and_keeps_protocol_data(
        cli: Cli, db: Session, settings: Settings) -> None:
    p = _enrolled_with_history(cli, db)
    alias = "ps-" + hmac.new(b"test-secret-key", b"P1", hashlib.sha256).hexdigest()[:12]
    assert pseudonym(settings.secret_key, "P1") == alias

    result = cli("participants", "erase", "P1", "--yes", "--actor", "ana")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Erased participant 1; it is now {alias}.",
        "Removed:",
        "  - phone number (+14*******71)",
        f"  - study code (replaced by {alias})",
        "  - 2 extra profile fields (arm, first_name)",
        "  - text and phone number of 7 messages",
        "  - 2 unsent outbound messages (cancelled)",
        "  - saved state of 2 conversation sessions (1 still open, now stopped)",
        "  - 1 free-text answer",
        "  - 1 escalation resolution note",
        "Kept:",
        f"  - participant 1 as {alias}: language en, time zone UTC, channel sms, "
        "consent opted_out (no further contact)",
        "  - 2 protocol answers",
        "  - 2 consent history entries",
        "  - 1 visit",
        "  - 2 session records (flow, version, status, times)",
        "  - 7 message records (direction, status, times; no text or number)",
        "  - 1 escalation (severity, reason, times)",
        "  - 5 audit entries, unchanged (append-only; answers and extra fields are in it "
        "as digests only)",
    ]

    db.expire_all()
    erased = db.get(Participant, p.id)
    assert erased is not None
    p = erased
    assert (p.code, p.pseudonym, p.phone, p.fields_json, p.consent) == (
        alias, alias, None, "{}", "opted_out")
    assert p.erased_at is not None
    consent = db.exec(select(ConsentChange).order_by(ConsentChange.id.desc())).first()  # type: ignore[union-attr]
    assert consent is not None and (consent.state, consent.source) == ("opted_out", "erasure")

    mine = db.exec(select(Message).where(Message.participant_id == p.id)).all()
    assert all(m.body is None and m.address is None for m in mine)
    assert sorted(m.status for m in mine if m.direction == "out") == [
        "cancelled", "cancelled", "delivered", "queued", "sent"]
    before_enrolment = db.exec(select(Message).where(Message.channel == "whatsapp")).one()
    assert (before_enrolment.body, before_enrolment.address) == (None, None)
    other = db.exec(select(Message).where(Message.body == "hi P2")).one()
    assert (other.status, other.address) == ("pending", "+14155552672")  # untouched

    sessions = {s.id: s for s in db.exec(select(ConversationSession))}
    assert {s.state_json for s in sessions.values()} == {"{}"}
    assert sessions["s-open"].status == "interrupted" and sessions["s-open"].ended_at
    assert sessions["s-done"].status == "completed"

    answers = db.exec(select(Answer).order_by(Answer.id)).all()  # type: ignore[arg-type]
    assert [(a.key, a.value_json, a.participant_id) for a in answers] == [
        ("took_dose", "true", p.id), ("pain", "7", p.id)]
    escalation = db.exec(select(Escalation)).one()
    assert (escalation.resolution_note, escalation.reason) == (None, "chest_pain")
    assert len(db.exec(select(Visit)).all()) == 1

    entry = db.exec(select(AuditEntry).order_by(AuditEntry.id.desc())).first()  # type: ignore[union-attr]
    assert entry is not None
    assert (entry.actor, entry.action, entry.entity_id) == ("staff:ana", "participant.erase",
                                                             str(p.id))
    # Nothing planned for them fires, and the cancelled messages are on record the way an
    # opt-out's are.
    assert [n.status for n in db.exec(select(Nudge))] == ["cancelled"]
    (cancelled,) = db.exec(select(AuditEntry).where(AuditEntry.action == "outbox.cancelled"))
    assert json.loads(cancelled.new_json or "{}") == {"messages": 2,
                                                      "reason": "participant erased"}
    # Nothing identifying went into the permanent trail, and it is still intact.
    trail = " ".join(f"{e.old_json} {e.new_json}" for e in db.exec(select(AuditEntry)))
    for secret in (PHONE, "Ana", "my chest hurts", "tired"):
        assert secret not in trail
    assert audit.verify(db) == []


def test_erasure_leaves_no_answer_or_extra_field_in_the_trail(
        converse: Converse, cli: Cli, db: Session, settings: Settings) -> None:
    # Through the bot's own paths, each audited: enrolment with an extra field, a free-text
    # answer that a flow also keeps as `first_name`, a protocol answer.
    converse("P1", PHONE, "Ana Maria", "7", extra={"nickname": "Bibi"})
    converse("P2", "+14155552672", "Bo", "3")
    assert cli("participants", "erase", "P1", "--yes").exit_code == 0
    db.rollback()
    entries = db.exec(select(AuditEntry)).all()
    assert {e.action for e in entries} >= {"participant.add", "participant.flow_set",
                                           "answer.recorded", "participant.erase"}
    for e in entries:
        for secret in (PHONE, "Ana Maria", "Bibi"):
            assert secret not in f"{e.old_json} {e.new_json}", (e.action, secret)
    assert audit.verify(db) == []
    check = audit.verify_answers(db, settings.secret_key)
    assert (check.problems, check.checked, check.erased) == ([], 3, 1)


def test_erased_participants_are_exported_without_personal_data(cli: Cli, db: Session) -> None:
    _enrolled_with_history(cli, db)
    cli("participants", "erase", "P1", "--yes")
    result = cli("participants", "export", "1")
    assert result.exit_code == 0
    assert PHONE not in result.stdout and "Ana" not in result.stdout
    assert "tired" not in result.stdout and "chest hurts" not in result.stdout
    listing = cli("participants", "list").output
    assert "erased" in listing and "P1 " not in listing


def test_erase_asks_first_and_refuses_twice(cli: Cli, db: Session) -> None:
    cli("participants", "add", "--phone", PHONE, "--code", "P1")
    result = cli("participants", "erase", "P1", input="n\n")
    assert result.exit_code == 1
    p = db.exec(select(Participant)).one()
    assert p.phone == PHONE and p.erased_at is None
    db.rollback()  # on SQLite an open transaction holds the write lock, even after a read
    assert cli("participants", "erase", "1", input="y\n").exit_code == 0
    result = cli("participants", "erase", "1", "--yes")
    assert result.exit_code == 1 and "already erased" in result.stderr
    result = cli("participants", "erase", "P404", "--yes")
    assert result.exit_code == 1 and 'no participant "P404"' in result.stderr


def test_the_number_can_enrol_again_after_erasure(cli: Cli) -> None:
    cli("participants", "add", "--phone", PHONE, "--code", "P1")
    cli("participants", "erase", "P1", "--yes")
    result = cli("participants", "add", "--phone", PHONE, "--code", "P1")
    assert result.exit_code == 0, result.output
