"""STOP in any language: one confirmation, then silence on every path until START."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from bot import conversation
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.models import AuditEntry, ConsentChange, Message, Participant
from bot.store.types import utcnow

from .conftest import CONTACT, Twilio, enrol, participant, replies, rows

PHONE = "+16175550101"


def start_checkin(app: Flask, settings: Settings, p: Participant) -> list[Message]:
    with session_scope(settings.database_url) as db:
        return conversation.start_flow(db, p, "daily_checkin", utcnow(), settings=settings,
                                       registry=app.extensions["trialbot"].registry)


def outbound(url: str) -> list[Message]:
    return rows(url, Message, Message.direction == "out")


@pytest.mark.parametrize("language,stop", [
    ("en", "STOP"),
    ("es", "no más mensajes"),
    ("fr", "arrêtez de m'écrire"),
])
@pytest.mark.parametrize("in_session", [True, False], ids=["waiting", "idle"])
def test_stop_confirms_once_then_nothing_until_start(
        language: str, stop: str, in_session: bool, app: Flask, app_settings: Settings,
        twilio: Twilio) -> None:
    url = app_settings.database_url
    p = enrol(url, language=language)
    pending = start_checkin(app, app_settings, p) if in_session else []

    confirmation = replies(twilio.sms(PHONE, stop))
    assert len(confirmation) == 1
    assert "START" in confirmation[0]
    assert participant(url).consent == "opted_out"
    assert [c.source for c in rows(url, ConsentChange, ConsentChange.state == "opted_out")] \
        == ["keyword"]
    # The check-in question waiting in the outbox will not go out.
    assert all(m.status == "cancelled"
               for m in outbound(url) if m.id in {x.id for x in pending})
    sent_before = len(outbound(url))

    # Answers, help, a repeated STOP: stored, never answered, nothing queued.
    for body in ("7", "HELP", stop, "STOP", "hola"):
        assert replies(twilio.sms(PHONE, body)) == []
    assert len(outbound(url)) == sent_before
    assert len(rows(url, Message, Message.direction == "in")) == 6
    assert len(rows(url, ConsentChange, ConsentChange.state == "opted_out")) == 1

    # Nor can a worker start a flow for them.
    with session_scope(url) as db:
        assert conversation.start_flow(db, participant(url), "daily_checkin", utcnow(),
                                       settings=app_settings,
                                       registry=app.extensions["trialbot"].registry) == []

    welcome = replies(twilio.sms(PHONE, "START"))
    assert len(welcome) == 1 and "STOP" in welcome[0]
    assert participant(url).consent == "opted_in"
    audit = [a.action for a in rows(url, AuditEntry, AuditEntry.actor == "participant:P001")]
    assert audit.count("consent.opted_out") == 1 and audit.count("consent.opted_in") == 1
    # Back to normal: the bot answers again.
    assert len(replies(twilio.sms(PHONE, "hello"))) == 1


def test_stop_on_whatsapp_silences_sms_too(app: Flask, app_settings: Settings,
                                           twilio: Twilio) -> None:
    enrol(app_settings.database_url)
    assert len(replies(twilio.sms(PHONE, "STOP", channel="whatsapp"))) == 1
    assert replies(twilio.sms(PHONE, "hello", channel="sms")) == []


@pytest.mark.parametrize("kind,state", [("STOP", "opted_out"), ("START", "opted_in")])
def test_advanced_opt_out_is_recorded_and_not_answered(
        kind: str, state: str, app: Flask, app_settings: Settings, twilio: Twilio) -> None:
    url = app_settings.database_url
    p = enrol(url, consent="opted_out" if kind == "START" else "opted_in")
    pending = start_checkin(app, app_settings, p) if kind == "STOP" else []
    response = twilio.sms(PHONE, kind, OptOutType=kind)
    assert replies(response) == []
    assert participant(url).consent == state
    assert [c.source for c in rows(url, ConsentChange, ConsentChange.state == state)
            if c.source != "enrolment"] == ["twilio_opt_out"]
    ids = {m.id for m in pending}
    assert all(m.status == "cancelled" for m in outbound(url) if m.id in ids)
    assert len(rows(url, Message, Message.direction == "in")) == 1


def test_advanced_opt_out_help_changes_nothing(app: Flask, app_settings: Settings,
                                               twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url)
    assert replies(twilio.sms(PHONE, "HELP", OptOutType="HELP")) == []
    assert participant(url).consent == "opted_in"
    assert outbound(url) == []


@pytest.mark.parametrize("in_session", [True, False], ids=["waiting", "idle"])
def test_help_in_spanish_gives_the_contact(in_session: bool, app: Flask,
                                           app_settings: Settings, twilio: Twilio) -> None:
    p = enrol(app_settings.database_url, language="es")
    if in_session:
        start_checkin(app, app_settings, p)
    texts = replies(twilio.sms(PHONE, "AYUDA"))
    assert any(CONTACT in t for t in texts)


def test_language_keyword_switches_the_participant(app: Flask, app_settings: Settings,
                                                   twilio: Twilio) -> None:
    url = app_settings.database_url
    p = enrol(url, language="en")
    start_checkin(app, app_settings, p)
    texts = replies(twilio.sms(PHONE, "Español"))
    assert participant(url).language == "es"
    # The open question comes again, now in Spanish.
    assert texts and "0" in texts[-1] and "10" in texts[-1]
    assert rows(url, AuditEntry, AuditEntry.action == "participant.language")


def test_start_while_opted_in_confirms(app: Flask, app_settings: Settings,
                                       twilio: Twilio) -> None:
    enrol(app_settings.database_url)
    assert len(replies(twilio.sms(PHONE, "START"))) == 1
    assert participant(app_settings.database_url).consent == "opted_in"


def test_stop_leaves_messages_twilio_accepted_as_they_are(
        app: Flask, app_settings: Settings, twilio: Twilio) -> None:
    """Twilio may still deliver a message it accepted, and its status callback must find the
    truth: only rows without a SID are cancelled."""
    url = app_settings.database_url
    p = enrol(url)
    first = start_checkin(app, app_settings, p)[0]
    assert first.id is not None
    with session_scope(url) as db:
        accepted = db.get(Message, first.id)
        assert accepted is not None
        accepted.status, accepted.twilio_sid = "queued", "SM" + "a" * 32
        unsent = Message(**{**accepted.model_dump(exclude={"id", "twilio_sid"}),
                            "status": "queued"})
        db.add(unsent)
        db.flush()
        unsent_id = unsent.id
    assert len(replies(twilio.sms(PHONE, "STOP"))) == 1
    by_id = {m.id: m for m in outbound(url)}
    assert by_id[first.id].status == "queued"
    assert by_id[unsent_id].status == "cancelled"
    assert [json.loads(a.new_json or "") for a in
            rows(url, AuditEntry, AuditEntry.action == "outbox.cancelled")] \
        == [{"messages": 1, "reason": "participant opted out"}]
