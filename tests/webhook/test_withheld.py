"""The webhook's side of withheld texts (texts that went out as a WhatsApp template that does
not show them): what a participant's next message gets, and what it does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask
from sqlmodel import col, select

from bot import conversation, nudges, outbox
from bot.config import Settings
from bot.schedule import QuietHours
from bot.store.db import get_engine, session_scope
from bot.store.models import (
    Answer,
    AuditEntry,
    ConversationSession,
    Escalation,
    Message,
    Nudge,
    Participant,
)
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


# ---- the question's time to answer starts when it is delivered --------------------------------

LATE = timedelta(hours=7, minutes=30)  # from the template to the participant's "ok"
REPROMPT_AFTER, GIVE_UP_AFTER = timedelta(hours=2), timedelta(hours=8)  # daily_checkin.yaml


def timeouts(url: str) -> dict[str, list[Nudge]]:
    """The wait's nudges by status, each list in due order."""
    out: dict[str, list[Nudge]] = {}
    for n in sorted(rows(url, Nudge, Nudge.kind == "timeout"), key=lambda n: n.due_at):
        out.setdefault(n.status, []).append(n)
    return out


def due(n: Nudge) -> str:
    return str(json.loads(n.params_json)["due"])


def fire(app: Flask, settings: Settings, n: Nudge, at: datetime,
         study: nudges.StudySchedule | None = None) -> nudges.Fired:
    with session_scope(settings.database_url) as db:
        return nudges.fire(db, n.id or 0, settings=settings,
                           registry=app.extensions["trialbot"].registry, now=at, study=study)


def test_a_withheld_question_s_time_to_answer_starts_when_it_is_delivered(
        app: Flask, app_settings: Settings, twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    asked = utcnow() - LATE
    (question,) = checkin(app, app_settings, asked)
    withhold(url, question, ago=LATE)
    old = timeouts(url)["pending"]
    assert [(due(n), n.due_at) for n in old] == [
        ("reprompt", asked + REPROMPT_AFTER), ("give_up", asked + GIVE_UP_AFTER)]

    before = utcnow()
    texts = wa(twilio, "ok")
    after = utcnow()
    assert len(texts) == 1 and texts[0].startswith(QUESTION)
    assert rows(url, Answer) == []
    now = timeouts(url)
    assert [n.id for n in now["stale"]] == [n.id for n in old]
    reprompt, give_up = now["pending"]
    assert (due(reprompt), due(give_up)) == ("reprompt", "give_up")
    assert before + REPROMPT_AFTER <= reprompt.due_at <= after + REPROMPT_AFTER
    assert before + GIVE_UP_AFTER <= give_up.due_at <= after + GIVE_UP_AFTER
    assert reprompt.wait_id == give_up.wait_id == old[0].wait_id

    # The old give-up time comes, 30 minutes after delivery: nothing happens, even if its
    # nudge fires all the same (a job that was under way).
    old_give_up = old[1]
    assert fire(app, app_settings, old_give_up, asked + GIVE_UP_AFTER).outcome == "not_pending"
    with session_scope(url) as db:
        db.connection().execute(sa.update(Nudge).where(col(Nudge.id) == old_give_up.id)
                                .values(status="pending"))
    assert fire(app, app_settings, old_give_up, asked + GIVE_UP_AFTER).outcome == "stale"
    (session,) = rows(url, ConversationSession)
    assert session.status == "waiting"
    assert len(rows(url, Message, Message.direction == "out")) == 2  # template and reply

    texts = wa(twilio, "7")
    assert "medicine" in texts[0]
    assert [(a.step, a.value_json) for a in rows(url, Answer)] == [("wellbeing", "7")]
    # The answer leaves the wait: the nudges of its new times go the usual way.
    assert {n.id for n in timeouts(url)["stale"]} == {n.id for n in (*old, reprompt, give_up)}


def test_a_re_prompt_spent_on_an_unseen_template_is_given_back(
        app: Flask, app_settings: Settings, twilio: Twilio) -> None:
    url = app_settings.database_url
    enrol(url, channel="whatsapp")
    asked = utcnow() - LATE
    (question,) = checkin(app, app_settings, asked)
    withhold(url, question, ago=LATE)
    old_reprompt, old_give_up = timeouts(url)["pending"]
    # The re-prompt goes out two hours later, as a template too. Quiet hours are put well
    # away from that moment, whenever the test runs.
    local = (asked + REPROMPT_AFTER).astimezone(ZoneInfo("America/New_York")) + timedelta(hours=6)
    quiet = QuietHours(start=local.strftime("%H:%M"),
                       end=(local + timedelta(minutes=30)).strftime("%H:%M"))
    fired = fire(app, app_settings, old_reprompt, asked + REPROMPT_AFTER,
                 nudges.StudySchedule(quiet=quiet))
    assert fired.outcome == "done" and len(fired.messages) == 1
    (nudge,) = rows(url, Message, col(Message.id) == fired.messages[0][0])
    withhold(url, nudge, ago=LATE - REPROMPT_AFTER)
    assert [n.id for n in timeouts(url)["pending"]] == [old_give_up.id]  # none left to send

    before = utcnow()
    texts = wa(twilio, "ok")
    assert len(texts) == 2 and texts[0].startswith(QUESTION)
    assert texts[1].startswith("We have not heard from you yet today")
    now = timeouts(url)
    assert [n.id for n in now["stale"]] == [old_give_up.id]
    assert [n.id for n in now["done"]] == [old_reprompt.id]
    reprompt, give_up = now["pending"]
    assert (due(reprompt), due(give_up)) == ("reprompt", "give_up")
    assert reprompt.due_at >= before + REPROMPT_AFTER
    assert give_up.due_at >= before + GIVE_UP_AFTER
