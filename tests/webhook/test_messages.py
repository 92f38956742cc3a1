"""Unknown senders, any Unicode, and a full check-in over the webhook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask

from bot import conversation
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.models import (
    Answer,
    AuditEntry,
    ConversationSession,
    Escalation,
    Message,
    Participant,
    UnknownSenderReply,
)
from bot.store.types import utcnow

from .conftest import Twilio, counts, enrol, participant, replies, rows

PHONE = "+16175550101"


def start(app: Flask, settings: Settings, p: Participant, flow: str = "daily_checkin") -> None:
    with session_scope(settings.database_url) as db:
        conversation.start_flow(db, p, flow, utcnow(), settings=settings,
                                registry=app.extensions["trialbot"].registry)


def test_unknown_sender_gets_one_generic_reply_a_day(app: Flask, app_settings: Settings,
                                                     twilio: Twilio) -> None:
    url = app_settings.database_url
    before = counts(url)
    first = replies(twilio.sms("+447700900123", "hi, is this the diabetes study?"))
    second = replies(twilio.sms("+447700900123", "hello??"))
    assert len(first) == 1 and second == []
    assert "study" not in first[0].lower() and "trial" not in first[0].lower()
    after = counts(url)
    assert after["unknown_sender_reply"] == before["unknown_sender_reply"] + 1
    assert {k: v for k, v in after.items() if k != "unknown_sender_reply"} == \
        {k: v for k, v in before.items() if k != "unknown_sender_reply"}
    stored = rows(url, UnknownSenderReply)[0]
    assert "7700900123" not in stored.phone_hash and len(stored.phone_hash) == 64
    # Another unknown number gets its own reply.
    assert len(replies(twilio.sms("+447700900124", "hi"))) == 1


def test_no_open_question_gets_a_polite_reply(app: Flask, app_settings: Settings,
                                              twilio: Twilio, enrolled: Participant) -> None:
    texts = replies(twilio.sms(PHONE, "hello"))
    assert len(texts) == 1 and "HELP" in texts[0]
    msgs = rows(app_settings.database_url, Message)
    assert sorted((m.direction, m.status) for m in msgs) == [("in", "received"), ("out", "sent")]


UNICODE = [
    "😀👍🏽 7",
    "أشعر بتحسن اليوم",
    "zero\u200bwidth\u200d\ufeff",
    "nul\x00byte",
    "\u202eRTL override",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ☃ \U0010fffd",
]


@pytest.mark.parametrize("body", UNICODE)
def test_any_unicode_is_stored_and_answered(body: str, app: Flask, app_settings: Settings,
                                            twilio: Twilio) -> None:
    url = app_settings.database_url
    p = enrol(url)
    start(app, app_settings, p)
    texts = replies(twilio.sms(PHONE, body))
    assert texts  # an answer or a hint, never an error
    stored = rows(url, Message, Message.direction == "in")[0]
    assert stored.body == body.replace("\x00", "")


def test_unicode_free_text_answer_round_trips(app: Flask, app_settings: Settings,
                                              twilio: Twilio, tmp_path: Path,
                                              flows_dir: Path) -> None:
    (flows_dir / "note.yaml").write_text(
        "spec: 1\nid: note\nversion: 1\nsteps:\n"
        "  - id: note\n    ask: Anything to tell us?\n    answer: text\n"
        "  - id: done\n    end: completed\n    send: \"Thanks: {answers.note}\"\n",
        encoding="utf-8")
    app.extensions["trialbot"].registry.refresh()
    url = app_settings.database_url
    p = enrol(url)
    start(app, app_settings, p, "note")
    body = "ألم 😷 \u200b\x00 头疼"
    texts = replies(twilio.sms(PHONE, body))
    assert texts == [f"Thanks: {body.replace(chr(0), '').strip()}"]
    answer = rows(url, Answer)[0]
    assert json.loads(answer.value_json) == body.replace("\x00", "").strip()


def test_a_full_check_in_over_the_webhook(app: Flask, app_settings: Settings,
                                          twilio: Twilio) -> None:
    url = app_settings.database_url
    p = enrol(url, language="es")
    start(app, app_settings, p)
    session = rows(url, ConversationSession)[0]
    assert (session.flow_id, session.flow_version, session.status) == ("daily_checkin", 1,
                                                                       "waiting")
    conversation_log = [(body, replies(twilio.sms(PHONE, body)))
                        for body in ("2", "no", "1", "no")]
    # Low score: support text, then the medicine question; "no" asks why; then symptoms.
    assert len(conversation_log[0][1]) == 2
    assert all(texts for _, texts in conversation_log)
    answers = sorted(rows(url, Answer), key=lambda a: a.id)
    assert [(a.key, json.loads(a.value_json)) for a in answers] == [
        ("wellbeing", 2), ("meds", False), ("meds_why", "forgot"), ("symptoms", False)]
    from bot.i18n import localizer

    revision = localizer("es").revision
    assert {(a.flow_id, a.flow_version, a.translation_revision, a.language)
            for a in answers} == {("daily_checkin", 1, revision, "es")}
    assert revision != "source"
    session = rows(url, ConversationSession)[0]
    assert session.status == "completed" and session.wait_id is None
    assert session.ended_at is not None
    # The low score raised one escalation with a short code navigators can type.
    (esc,) = rows(url, Escalation)
    assert esc.reason == "low_wellbeing" and esc.state == "open"
    assert len(esc.code) == 5 and esc.code.startswith("E")
    # Every answer is in the audit trail, by the participant.
    audited = rows(url, AuditEntry, AuditEntry.action == "answer.recorded")
    assert len(audited) == 4 and {a.actor for a in audited} == {"participant:P001"}
    # ... and the chain still verifies.
    from sqlmodel import Session

    from bot import audit
    from bot.store.db import get_engine

    with Session(get_engine(url)) as db:
        assert audit.verify(db) == []
    # Replies were stored as sent, each pointing at the message it answers.
    out = rows(url, Message, Message.direction == "out", Message.status == "sent")
    assert all(m.reply_to_id is not None and m.session_id == session.id for m in out)


def test_a_repeated_escalation_counts_on_the_open_one(app: Flask, app_settings: Settings,
                                                      twilio: Twilio) -> None:
    url = app_settings.database_url
    p = enrol(url)
    for _ in range(2):
        start(app, app_settings, p)
        twilio.sms(PHONE, "1")
    (esc,) = rows(url, Escalation)
    assert esc.repeats == 1


def test_a_session_finishes_on_the_version_it_started_on(
        app: Flask, app_settings: Settings, twilio: Twilio, flows_dir: Path) -> None:
    url = app_settings.database_url
    p = enrol(url)
    start(app, app_settings, p)  # daily_checkin v1
    path = flows_dir / "daily_checkin.yaml"
    amended = path.read_text(encoding="utf-8") \
        .replace("version: 1", "version: 2", 1) \
        .replace("Did you take your study medicine today? Reply YES or NO.",
                 "AMENDED - did you take the new study medicine today? Reply YES or NO.")
    path.write_text(amended, encoding="utf-8")
    app.extensions["trialbot"].registry.refresh()

    texts = replies(twilio.sms(PHONE, "8"))
    assert texts and "AMENDED" not in texts[-1] and "medicine" in texts[-1]
    assert {a.flow_version for a in rows(url, Answer)} == {1}

    # A session started now runs the amendment.
    enrol(url, phone="+16175550102", code="P002")
    start(app, app_settings, participant(url, "P002"))
    assert "AMENDED" in replies(twilio.sms("+16175550102", "8"))[-1]

    # And a fresh app (a restart) still finishes the old session from the stored version.
    from bot import create_app

    fresh = Twilio(create_app(app_settings).test_client(), app_settings)
    assert "AMENDED" not in replies(fresh.sms(PHONE, "yes"))[-1]
    versions = {(s.flow_version, s.status) for s in rows(url, ConversationSession)}
    assert (1, "waiting") in versions and (2, "waiting") in versions


def test_whatsapp_reply_reopens_the_window(app: Flask, app_settings: Settings,
                                           twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    with session_scope(url) as db:
        p = db.get(Participant, participant(url).id)
        assert p is not None
        p.whatsapp_window_closed = True
    twilio.sms(PHONE, "hello", channel="whatsapp")
    assert participant(url).whatsapp_window_closed is False
    assert rows(url, Message, Message.direction == "in")[0].channel == "whatsapp"


def test_a_session_that_cannot_run_is_failed_not_retried_forever(
        app: Flask, app_settings: Settings, twilio: Twilio,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = app_settings.database_url
    p = enrol(url)
    start(app, app_settings, p)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError("no such step")

    monkeypatch.setattr(conversation.runner, "resume", broken)
    assert replies(twilio.sms(PHONE, "7")) == []
    assert len(rows(url, Message, Message.direction == "in")) == 1
    (session,) = rows(url, ConversationSession)
    assert session.status == "failed" and session.wait_id is None
    monkeypatch.undo()
    # The next message finds no open question instead of the broken session.
    assert len(replies(twilio.sms(PHONE, "hello"))) == 1


def test_onboarding_sets_language_and_check_in_time(app: Flask, app_settings: Settings,
                                                    twilio: Twilio) -> None:
    url = app_settings.database_url
    p = enrol(url, language="en")
    start(app, app_settings, p, "onboarding")
    replies(twilio.sms(PHONE, "yes"))
    replies(twilio.sms(PHONE, "2"))  # Español
    closing = replies(twilio.sms(PHONE, "3"))  # evening
    assert closing
    after = participant(url)
    assert (after.language, after.checkin_time) == ("es", "18:30")
    changes = rows(url, AuditEntry, AuditEntry.action == "participant.flow_set")
    assert changes and {a.actor for a in changes} == {"participant:P001"}


def test_a_flow_can_say_goodbye_and_opt_the_participant_out(
        app: Flask, app_settings: Settings, twilio: Twilio, flows_dir: Path) -> None:
    (flows_dir / "consent_check.yaml").write_text(
        "spec: 1\nid: consent_check\nversion: 1\nsteps:\n"
        "  - id: ok\n    ask: May we text you? Reply YES or NO.\n    answer: yes_no\n"
        "    branch:\n      - if: answer == no\n        goto: opt_out\n"
        "  - id: fine\n    end: completed\n    send: Great.\n"
        "  - id: opt_out\n    set:\n      consent: '\"opted_out\"'\n"
        "  - id: bye\n    end: declined\n    send: Understood, no more messages.\n",
        encoding="utf-8")
    app.extensions["trialbot"].registry.refresh()
    url = app_settings.database_url
    p = enrol(url)
    start(app, app_settings, p, "consent_check")
    assert replies(twilio.sms(PHONE, "no")) == ["Understood, no more messages."]
    assert participant(url).consent == "opted_out"
    from bot.store.models import ConsentChange

    assert [c.source for c in rows(url, ConsentChange, ConsentChange.state == "opted_out")] \
        == ["flow"]
    assert replies(twilio.sms(PHONE, "hello")) == []
