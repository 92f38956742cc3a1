"""The webhook's side of withheld texts (texts that went out as a WhatsApp template that does
not show them): what a participant's next message gets, and what it does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlmodel import col, select

from bot import conversation, outbox
from bot.config import Settings
from bot.store.db import get_engine, session_scope
from bot.store.models import Answer, AuditEntry, Escalation, Message, Participant
from bot.store.types import utcnow

from .conftest import Twilio, enrol, new_sid, participant, replies, rows

PHONE = "+16175550101"
QUESTION = "Hello! How do you feel today?"
HX = "HX" + "1" * 32


def checkin(app: Flask, settings: Settings, now: datetime | None = None) -> list[Message]:
    with session_scope(settings.database_url) as db:
        p = db.exec(select(Participant).where(Participant.phone == PHONE)).one()
        return conversation.start_flow(db, p, "daily_checkin", now or utcnow(),
                                       settings=settings,
                                       registry=app.extensions["trialbot"].registry)


def withhold(url: str, *messages: Message, ago: timedelta = timedelta(hours=1),
             status: str = "delivered") -> None:
    """What the send job records for a template without `{body}`."""
    with session_scope(url) as db:
        for m in messages:
            db.connection().execute(sa.update(Message).where(col(Message.id) == m.id).values(
                status=status, twilio_sid=new_sid(), channel="whatsapp", content_sid=HX,
                sent_at=utcnow() - ago, withheld_at=utcnow() - ago))
        db.connection().execute(sa.update(Participant).where(col(Participant.phone) == PHONE)
                                .values(whatsapp_withheld=True))


def outcome_of(url: str, m: Message) -> str | None:
    found: Message = rows(url, Message, Message.id == m.id)[0]
    return found.withheld_outcome


def expired_reason(url: str, m: Message) -> str:
    (entry,) = rows(url, AuditEntry, AuditEntry.action == "outbox.withheld_expired",
                    AuditEntry.entity_id == str(m.id))
    return str(json.loads(entry.new_json)["reason"])


def wa(twilio: Twilio, body: str) -> list[str]:
    return replies(twilio.sms(PHONE, body, channel="whatsapp"))


def test_a_conversation_replaced_since_is_not_delivered(app: Flask, app_settings: Settings,
                                                        twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    (old,) = checkin(app, app_settings, utcnow() - timedelta(days=1))
    (new,) = checkin(app, app_settings)  # yesterday's check-in is interrupted
    withhold(url, old, ago=timedelta(hours=20))
    withhold(url, new)
    texts = wa(twilio, "ok")
    assert len(texts) == 1 and texts[0].startswith(QUESTION)
    assert (outcome_of(url, old), outcome_of(url, new)) == ("expired", "delivered")
    assert expired_reason(url, old) == "conversation ended"
    assert rows(url, Answer) == []


def test_keywords_and_red_flags_leave_the_texts_waiting(app: Flask, app_settings: Settings,
                                                        twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    (question,) = checkin(app, app_settings)
    withhold(url, question)
    helped = wa(twilio, "HELP")
    assert helped and all(QUESTION not in t for t in helped)
    assert wa(twilio, "I can't breathe") == []  # the safety message answers, through the outbox
    assert [e.severity for e in rows(url, Escalation)] == ["urgent"]
    assert outcome_of(url, question) is None and participant(url).whatsapp_withheld
    texts = wa(twilio, "ok")
    assert len(texts) == 1 and texts[0].startswith(QUESTION)
    assert rows(url, Answer) == []


def test_an_open_question_seen_in_full_still_takes_its_answer(
        app: Flask, app_settings: Settings, twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    checkin(app, app_settings)  # went out free-form: the participant saw it
    with session_scope(url) as db:
        p = db.exec(select(Participant).where(Participant.phone == PHONE)).one()
        note = outbox.enqueue(db, participant=p, body="Your visit is on Friday.", kind="nudge")
    withhold(url, note)
    texts = wa(twilio, "7")
    assert texts[0] == "Your visit is on Friday." and "medicine" in texts[1]
    assert [(a.step, a.value_json) for a in rows(url, Answer)] == [("wellbeing", "7")]
    assert outcome_of(url, note) == "delivered"


def test_an_sms_leaves_whatsapp_texts_waiting(app: Flask, app_settings: Settings,
                                              twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    (question,) = checkin(app, app_settings)
    withhold(url, question)
    assert all(QUESTION not in t for t in replies(twilio.sms(PHONE, "5")))
    assert outcome_of(url, question) is None and participant(url).whatsapp_withheld


def test_a_template_that_failed_is_not_delivered(app: Flask, app_settings: Settings,
                                                 twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    (question,) = checkin(app, app_settings)
    withhold(url, question, status="undelivered")  # its retry carries the text
    assert all(QUESTION not in t for t in wa(twilio, "ok"))
    assert outcome_of(url, question) == "expired"
    assert expired_reason(url, question) == "template not delivered"


def test_a_delivered_text_is_not_retried_when_its_template_fails_late(
        app: Flask, app_settings: Settings, twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    (question,) = checkin(app, app_settings)
    withhold(url, question, status="sent")
    wa(twilio, "ok")
    sid = rows(url, Message, Message.id == question.id)[0].twilio_sid
    assert twilio.status(sid, "undelivered", 30003).status_code == 204
    outbound = rows(url, Message, Message.direction == "out")
    assert [m.status for m in outbound if m.id == question.id] == ["undelivered"]
    assert len(outbound) == 2  # the template and the reply that carried its text: no retry


@contextmanager
def statements(url: str) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    engine = get_engine(url)
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def test_without_withheld_texts_the_webhook_does_not_look(
        app: Flask, app_settings: Settings, twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    (question,) = checkin(app, app_settings)
    with statements(url) as seen:
        wa(twilio, "7")
    assert not any("withheld_outcome" in sql for sql in seen)
    assert len(rows(url, Answer)) == 1
    (question,) = checkin(app, app_settings)
    withhold(url, question)
    with statements(url) as seen:
        wa(twilio, "ok")
    assert any("withheld_outcome" in sql for sql in seen)  # the listener does see it
