"""Texts withheld behind a WhatsApp template that does not show them: the send job marks
them, and the participant's next message gets them as its reply (and is no answer)."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET  # noqa: N817
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from sqlmodel import col, select
from twilio.request_validator import RequestValidator

from bot import conversation, create_app, delivery, templates
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.models import Answer, AuditEntry, Message, Participant
from bot.store.types import utcnow
from workers import send

from .conftest import ACCOUNT_SID, AUTH_TOKEN, HX_EN, WHATSAPP_FROM, Emu, Maker, reload, row

QUESTION = "Hello! How do you feel today?"
GENERIC = {"checkin": {"en": {"content_sid": HX_EN, "variables": {"1": "{study_name}"}}}}


# ---- without I/O ---------------------------------------------------------------------------


def test_only_a_template_without_body_withholds() -> None:
    registry = templates.TemplateRegistry.parse({
        "checkin": {"en": {"content_sid": HX_EN, "variables": {"1": "{study_name}"}},
                    "es": {"content_sid": HX_EN, "variables": {"1": "{study_name}: {body}"}},
                    "fr": {"content_sid": HX_EN}}})
    now = utcnow()
    closed = delivery.Recipient(phone="+16175550101", language="en")

    def plan(language: str) -> delivery.Plan | delivery.Undeliverable:
        return delivery.plan("whatsapp", "text", replace(closed, language=language),
                             purpose="checkin", now=now, templates=registry,
                             template_values={"study_name": "S"})

    withheld = {lang: getattr(plan(lang), "withheld", None) for lang in ("en", "es", "fr")}
    assert withheld == {"en": True, "es": False, "fr": True}
    open_ = delivery.plan("whatsapp", "text", replace(closed, last_inbound_at=now),
                          purpose="checkin", now=now, templates=registry, template_values={})
    assert isinstance(open_, delivery.Plan) and open_.withheld is False


def test_what_makes_a_withheld_text_stale() -> None:
    now = utcnow()
    at = now - timedelta(days=1)

    def why(**kw: object) -> str | None:
        args: dict[str, object] = {"withheld_at": at, "created_at": at, "now": now, **kw}
        return delivery.withheld_expiry(**args)  # type: ignore[arg-type]

    assert why() is None
    assert why(withheld_at=now - timedelta(days=7)) == "older than 7 days"
    assert why(withheld_at=now - timedelta(days=6, hours=23)) is None
    assert why(opted_out_at=at + timedelta(minutes=1)) == "opted out since"
    assert why(opted_out_at=at - timedelta(minutes=1)) is None
    assert why(conversation_ended_at=at + timedelta(hours=8)) == "conversation ended"
    assert why(conversation_ended_at=at) is None  # a send-only flow ends as it speaks
    assert why(template_failed=True) == "template not delivered"


# ---- the send job, the emulator and the webhook ---------------------------------------------


@pytest.fixture
def generic(tmp_path: Path, ob_settings: Settings) -> Settings:
    path = tmp_path / "generic.json"
    path.write_text(json.dumps(GENERIC), encoding="utf-8")
    return replace(ob_settings, whatsapp_templates=str(path))


@pytest.fixture
def app(generic: Settings) -> Flask:
    return create_app(generic)


@pytest.fixture
def worker(generic: Settings, redis: Redis) -> Iterator[send.SendContext]:
    context = send.SendContext.create(generic, redis, status_callback=False)
    yield context
    context.close()


def checkin(app: Flask, settings: Settings, p: Participant) -> list[int]:
    """The daily check-in, started as the scheduler does (purpose `checkin`)."""
    with session_scope(settings.database_url) as db:
        msgs = conversation.start_flow(db, p, "daily_checkin", utcnow(), settings=settings,
                                       registry=app.extensions["trialbot"].registry)
        for m in msgs:
            m.purpose = "checkin"
            db.add(m)
        db.flush()
        return [int(m.id) for m in msgs if m.id is not None]


def write(app: Flask, settings: Settings, p: Participant, body: str) -> list[str]:
    """The participant writes on WhatsApp; the texts of the TwiML reply."""
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID,
              "From": f"whatsapp:{p.phone}", "To": f"whatsapp:{WHATSAPP_FROM}", "Body": body,
              "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        settings.public_base_url + "/twilio/messages", params)
    response = app.test_client().post("/twilio/messages", data=params,
                                      headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.data
    return [m.text or "" for m in ET.fromstring(response.data).findall("Message")]  # noqa: S314


def answers(url: str) -> list[tuple[str, Any]]:
    with session_scope(url) as db:
        return [(a.step, json.loads(a.value_json))
                for a in db.exec(select(Answer).order_by(col(Answer.id))).all()]


def audit_actions(url: str, message_id: int) -> list[str]:
    with session_scope(url) as db:
        return [e.action for e in db.exec(select(AuditEntry).where(
            AuditEntry.entity == "message", AuditEntry.entity_id == str(message_id))).all()]


def closed_window(make_participant: Maker) -> Participant:
    return make_participant(channel="whatsapp", last_inbound_at=utcnow() - timedelta(hours=30))


def test_a_generic_template_withholds_and_the_reply_gets_the_question(
        app: Flask, generic: Settings, worker: send.SendContext, emu: Emu,
        make_participant: Maker) -> None:
    url = generic.database_url
    p = closed_window(make_participant)
    (mid,) = checkin(app, generic, p)
    assert send.deliver(worker, [mid])["sent"] == 1
    (sent,) = emu.messages()
    assert sent["content_sid"] == HX_EN
    assert "feel" not in (sent["body"] or "")  # what the participant sees: no question
    msg = row(url, mid)
    assert msg.withheld_at is not None and msg.withheld_outcome is None
    assert reload(url, p).whatsapp_withheld is True

    replies = write(app, generic, p, "ok")
    assert len(replies) == 1 and replies[0].startswith(QUESTION)
    assert answers(url) == []  # "ok" answered the template, not the question
    assert row(url, mid).withheld_outcome == "delivered"
    assert reload(url, p).whatsapp_withheld is False
    assert audit_actions(url, mid) == ["outbox.withheld_delivered"]
    with session_scope(url) as db:
        out = db.exec(select(Message).where(Message.direction == "out", Message.id != mid)).one()
        entry = db.exec(select(AuditEntry).where(
            AuditEntry.action == "outbox.withheld_delivered")).one()
    assert (out.body, out.status, out.channel) == (msg.body, "sent", "whatsapp")
    assert out.reply_to_id is not None and out.session_id == msg.session_id
    assert "feel" not in (entry.new_json or "") and str(p.phone) not in (entry.new_json or "")

    replies = write(app, generic, p, "7")
    assert answers(url) == [("wellbeing", 7)]
    assert replies and "medicine" in replies[0]  # the check-in goes on
    assert [m["sid"] for m in emu.messages()] == [sent["sid"]]  # the reply went in TwiML


def test_a_template_with_body_withholds_nothing(
        tmp_path: Path, app: Flask, generic: Settings, redis: Redis, emu: Emu,
        make_participant: Maker) -> None:
    url = generic.database_url
    path = tmp_path / "with_body.json"
    path.write_text(json.dumps({"checkin": {"en": {
        "content_sid": HX_EN, "variables": {"1": "{study_name}", "2": "{body}"}}}}))
    context = send.SendContext.create(replace(generic, whatsapp_templates=str(path)), redis,
                                      status_callback=False)
    p = closed_window(make_participant)
    (mid,) = checkin(app, generic, p)
    try:
        assert send.deliver(context, [mid])["sent"] == 1
    finally:
        context.close()
    (sent,) = emu.messages()
    assert json.loads(sent["content_variables"])["2"].startswith(QUESTION)
    assert row(url, mid).withheld_at is None
    assert reload(url, p).whatsapp_withheld is False
    # The participant saw the question: their reply is its answer.
    write(app, generic, p, "8")
    assert answers(url) == [("wellbeing", 8)]


def test_stop_after_a_withheld_template_delivers_nothing(
        app: Flask, generic: Settings, worker: send.SendContext, emu: Emu,
        make_participant: Maker) -> None:
    url = generic.database_url
    p = closed_window(make_participant)
    (mid,) = checkin(app, generic, p)
    send.deliver(worker, [mid])
    assert row(url, mid).withheld_at is not None

    replies = write(app, generic, p, "STOP")
    assert len(replies) == 1 and QUESTION not in replies[0]
    assert reload(url, p).consent == "opted_out"
    assert write(app, generic, p, "ok") == []  # opted out: silence
    assert row(url, mid).withheld_outcome is None

    assert len(write(app, generic, p, "START")) == 1
    replies = write(app, generic, p, "ok")
    assert all(QUESTION not in r for r in replies)  # withheld before the opt-out
    assert row(url, mid).withheld_outcome == "expired"
    assert audit_actions(url, mid) == ["outbox.withheld_expired"]
    assert answers(url) == []


def test_a_text_withheld_over_7_days_ago_is_not_delivered(
        app: Flask, generic: Settings, worker: send.SendContext, emu: Emu,
        make_participant: Maker) -> None:
    url = generic.database_url
    p = closed_window(make_participant)
    (mid,) = checkin(app, generic, p)
    send.deliver(worker, [mid])
    with session_scope(url) as db:
        db.connection().execute(sa.update(Message).where(col(Message.id) == mid).values(
            withheld_at=utcnow() - timedelta(days=7, minutes=1)))

    replies = write(app, generic, p, "ok")
    assert all(QUESTION not in r for r in replies)
    assert row(url, mid).withheld_outcome == "expired"
    assert reload(url, p).whatsapp_withheld is False
    with session_scope(url) as db:
        entry = db.exec(select(AuditEntry).where(
            AuditEntry.action == "outbox.withheld_expired")).one()
    assert json.loads(entry.new_json or "{}")["reason"] == "older than 7 days"
