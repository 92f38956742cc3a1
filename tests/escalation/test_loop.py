"""The whole loop through the webhook: a severe symptom in Spanish, the safety message, the
alert to the navigator on call, the climb to the backup, the ACK that stops it, the trail."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlmodel import col

from bot import conversation, escalation
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.models import Message, Participant
from bot.store.types import utcnow
from workers import send

from .conftest import (
    ANA,
    BEN,
    DANA,
    PARTICIPANT,
    Emu,
    Smtp,
    Twilio,
    alerts,
    deliver_all,
    escalations,
    outbound,
    trail,
)


class Clock:
    def __init__(self) -> None:
        self.start = utcnow().replace(microsecond=0)
        self.now = self.start

    def at(self, **delta: float) -> datetime:
        self.now = self.start + timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The webhook's clock, so the test can say when an ACK arrives."""
    c = Clock()
    monkeypatch.setattr("bot.webhook.utcnow", lambda: c.now)
    return c


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def check(settings: Settings, when: datetime) -> escalation.CheckResult:
    return escalation.check_escalations(settings, when)


def actions(url: str, code: str) -> list[tuple[str, dict[str, object]]]:
    return [(e.action, json.loads(e.new_json or "{}")) for e in trail(url, code)]


def test_red_flag_in_spanish_pages_climbs_and_stops_at_the_ack(
        esc_settings: Settings, participant: Participant, twilio: Twilio, emu: Emu,
        smtp: Smtp, ctx: send.SendContext, clock: Clock,
        logged: pytest.LogCaptureFixture) -> None:
    url = esc_settings.database_url
    # No question is waiting: the red flag is found anyway, and answered by the safety message.
    assert twilio.sms(PARTICIPANT, "no puedo respirar") == []
    (esc,) = escalations(url)
    assert (esc.severity, esc.reason, esc.state, esc.level) == (
        "urgent", "breathing_difficulty", "open", 0)
    assert esc.next_alert_at == clock.start + timedelta(minutes=10)

    (safety,) = outbound(url, Message.kind == "safety")
    assert safety.urgent and safety.language == "es" and safety.participant_id == participant.id
    assert safety.body is not None and "llame al 911" in safety.body
    (sms_alert,) = outbound(url, Message.kind == "alert")
    assert sms_alert.address == ANA and sms_alert.urgent
    assert sms_alert.body == (f"URGENT study alert {esc.code}: participant P001, "
                              f"breathing_difficulty. Reply ACK {esc.code} to acknowledge.")

    # The send worker delivers both; the periodic check sends the email.
    deliver_all(ctx, url, clock.at(seconds=5))
    assert [m["body"] for m in emu.to(PARTICIPANT)] == [safety.body]
    assert [m["body"] for m in emu.to(ANA)] == [sms_alert.body]
    result = check(esc_settings, clock.at(seconds=10))
    assert result.climbed == [] and result.emails.sent == 1
    (email,) = smtp.to("ana@example.org")
    assert email["Subject"] == f"[URGENT] Escalation {esc.code}: participant P001"
    text = email.get_payload()
    assert f"ACK {esc.code}" in str(text) and "no puedo" not in str(text)
    assert PARTICIPANT not in str(text)

    # Nobody answers: after 10 minutes the primary again, after 20 the backup.
    assert check(esc_settings, clock.at(minutes=9)).climbed == []
    assert check(esc_settings, clock.at(minutes=10, seconds=1)).climbed == [esc.code]
    assert check(esc_settings, clock.at(minutes=10, seconds=30)).climbed == []
    deliver_all(ctx, url, clock.now)
    assert len(emu.to(ANA)) == 2 and any("2nd alert" in m["body"] for m in emu.to(ANA))
    assert emu.to(BEN) == []
    assert check(esc_settings, clock.at(minutes=20, seconds=2)).climbed == [esc.code]
    deliver_all(ctx, url, clock.now)
    (to_ben,) = emu.to(BEN)
    assert "you are the backup" in to_ben["body"]
    assert len(smtp.to("ben@example.org")) == 1
    assert escalations(url)[0].level == 2

    # Ben acknowledges from his phone: the climb stops, the coordinator is never paged.
    clock.at(minutes=23)
    (reply,) = twilio.sms(BEN, f"ack {esc.code.lower()}")
    assert reply == (f"Thank you. {esc.code} is acknowledged: participant P001, "
                     "breathing_difficulty (urgent).")
    done = escalations(url)[0]
    assert (done.state, done.acknowledged_by, done.next_alert_at) == ("acknowledged", "ben",
                                                                     None)
    assert done.acknowledged_at == clock.start + timedelta(minutes=23)
    for minutes in (31, 45, 120):
        assert check(esc_settings, clock.at(minutes=minutes)).climbed == []
    deliver_all(ctx, url, clock.now)
    assert emu.to(DANA) == [] and smtp.to("dana@example.org") == []
    assert alerts(url) == [
        (0, "ana", "sms", "queued"), (0, "ana", "email", "sent"),
        (1, "ana", "sms", "queued"), (1, "ana", "email", "sent"),
        (2, "ben", "sms", "queued"), (2, "ben", "email", "sent")]

    # Every step, with its time, in the audit trail.
    steps = actions(url, esc.code)
    assert [a for a, _ in steps] == [
        "escalation.raised", "escalation.alerted", "escalation.safety_message",
        "escalation.alerted",
        "escalation.climbed", "escalation.alerted", "escalation.alerted",
        "escalation.climbed", "escalation.alerted", "escalation.alerted",
        "escalation.acknowledged"]
    assert steps[0][1]["source"] == "red_flag" and steps[0][1]["reason"] == \
        "breathing_difficulty"
    assert [(d["level"], d["channel"], d["navigator"]) for a, d in steps
            if a == "escalation.alerted"] == [
        (0, "sms", "ana"), (0, "email", "ana"), (1, "sms", "ana"), (1, "email", "ana"),
        (2, "sms", "ben"), (2, "email", "ben")]
    assert [(d["from"], d["to"]) for a, d in steps if a == "escalation.climbed"] == [
        (0, 1), (1, 2)]
    assert steps[-1][1] == {"by": "ben", "via": "sms", "level": 2, "seconds": 23 * 60,
                            "alerts_cancelled": 0}
    times = [e.at for e in trail(url, esc.code)]
    assert times == sorted(times) and times[0] == clock.start
    assert times[-1] == clock.start + timedelta(minutes=23)

    # No body, no phone number and no symptom in any log line; every page is logged.
    for record in logged.records:
        shown = record.getMessage() + json.dumps(getattr(record, "fields", {}), default=str)
        assert "puedo respirar" not in shown
        assert PARTICIPANT not in shown and ANA not in shown and BEN not in shown
        if record.name.startswith("bot"):  # not the test mail server's own debug lines
            assert "breathing" not in shown
    paged = [(r.levelname, r.fields["tier"]) for r in logged.records  # type: ignore[attr-defined]
             if r.getMessage() in ("escalation_alerted", "escalation_climbed")]
    assert ("INFO", 0) in paged and ("INFO", 1) in paged and ("INFO", 2) in paged


def test_very_severe_breathlessness_in_the_questionnaire(
        app: Flask, esc_settings: Settings, participant: Participant, twilio: Twilio,
        emu: Emu, ctx: send.SendContext, clock: Clock) -> None:
    url = esc_settings.database_url
    with session_scope(url) as db:
        p = db.get(Participant, participant.id)
        assert p is not None
        conversation.start_flow(db, p, "symptom_questionnaire", clock.now,
                                settings=esc_settings, registry=app.extensions["trialbot"].registry)
    for answer in ("Nada", "Leve", "Nada", "Nada"):  # nausea, fatigue, pain, diarrhea
        assert twilio.sms(PARTICIPANT, answer)
    (warning, rash) = twilio.sms(PARTICIPANT, "muy grave")
    assert "emergencia" in warning and "sarpullido" in rash
    (esc,) = escalations(url)
    assert (esc.severity, esc.reason, esc.flow_id, esc.step) == (
        "urgent", "very_severe_shortness_of_breath", "symptom_questionnaire", "breath_urgent")
    (safety,) = outbound(url, Message.kind == "safety")
    assert safety.language == "es" and "911" in (safety.body or "")
    deliver_all(ctx, url, clock.at(seconds=5))
    assert len(emu.to(PARTICIPANT)) >= 1 and len(emu.to(ANA)) == 1
    steps = actions(url, esc.code)
    assert steps[0][0] == "escalation.raised" and steps[0][1]["source"] == "flow"
    # The rest of the questionnaire goes on; a second "muy grave" for the rash is `high`.
    assert twilio.sms(PARTICIPANT, "muy grave")
    assert {(e.reason, e.severity) for e in escalations(url)} == {
        ("very_severe_shortness_of_breath", "urgent"), ("severe_rash", "high")}


def test_a_repeat_counts_on_the_open_escalation_and_pages_nobody(
        esc_settings: Settings, participant: Participant, twilio: Twilio,
        clock: Clock) -> None:
    url = esc_settings.database_url
    twilio.sms(PARTICIPANT, "me falta el aire")  # high
    before = alerts(url)
    clock.at(minutes=2)
    twilio.sms(PARTICIPANT, "no puedo respirar")  # urgent, same reason
    (esc,) = escalations(url)
    assert esc.repeats == 1 and esc.severity == "urgent"
    # An urgent repeat pulls the climb in to the urgent deadline, but pages nobody now.
    assert esc.next_alert_at == clock.start + timedelta(minutes=12)
    assert alerts(url) == before
    assert len(outbound(url, Message.kind == "safety")) == 1
    clock.at(minutes=5)
    twilio.sms(PARTICIPANT, "no puedo respirar")
    assert escalations(url)[0].repeats == 2
    assert len(outbound(url, Message.kind == "safety")) == 1  # not again within 30 minutes
    steps = [a for a, _ in actions(url, esc.code)]
    assert steps.count("escalation.repeated") == 2
    assert steps.count("escalation.safety_message") == 1


def test_denials_and_everyday_messages_raise_nothing(
        esc_settings: Settings, participant: Participant, twilio: Twilio) -> None:
    for body in ("no tengo dolor de pecho", "sin dolor de pecho, gracias", "estoy bien",
                 "no chest pain"):
        twilio.sms(PARTICIPANT, body)
    assert escalations(esc_settings.database_url) == []
    assert outbound(esc_settings.database_url, col(Message.kind).in_(("alert", "safety"))) == []
