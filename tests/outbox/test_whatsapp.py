"""WhatsApp's 24 h window: free-form inside, the approved template outside, SMS or
"undeliverable" without one; and 63016 from a status callback takes the same path."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlmodel import select

from bot import outbox, templates
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.models import AuditEntry
from bot.store.types import utcnow
from workers import send
from workers.sweep import sweep_outbox

from .conftest import HX_EN, HX_ES, WHATSAPP_FROM, Emu, Maker, reload, row, rows, wait_until


def put(url: str, p, body: str = "Time for your check-in", purpose: str | None = "checkin",
        ) -> int:  # type: ignore[no-untyped-def]
    with session_scope(url) as db:
        return int(outbox.enqueue(db, participant=p, body=body, kind="nudge",
                                  purpose=purpose).id)


def test_inside_the_window_text_goes_as_it_is(ob_settings: Settings, ctx: send.SendContext,
                                              emu: Emu, make_participant: Maker) -> None:
    p = make_participant(channel="whatsapp", last_inbound_at=utcnow() - timedelta(hours=23))
    mid = put(ob_settings.database_url, p)
    assert send.deliver(ctx, [mid])["sent"] == 1
    (sent,) = emu.messages()
    assert sent["to"] == f"whatsapp:{p.phone}" and sent["from"] == f"whatsapp:{WHATSAPP_FROM}"
    assert sent["body"] == "Time for your check-in" and sent["content_sid"] is None
    msg = row(ob_settings.database_url, mid)
    assert msg.channel == "whatsapp" and msg.content_sid is None


@pytest.mark.parametrize(("language", "hx"), [("en", HX_EN), ("es", HX_ES)])
def test_outside_the_window_the_template_in_their_language(
        ob_settings: Settings, ctx: send.SendContext, emu: Emu, make_participant: Maker,
        language: str, hx: str) -> None:
    p = make_participant(channel="whatsapp", language=language,
                         last_inbound_at=utcnow() - timedelta(hours=25))
    mid = put(ob_settings.database_url, p)
    assert send.deliver(ctx, [mid])["sent"] == 1
    (sent,) = emu.messages()
    assert sent["content_sid"] == hx
    assert json.loads(sent["content_variables"]) == {"1": "HeartStudy"}
    assert sent["to"] == f"whatsapp:{p.phone}"
    msg = row(ob_settings.database_url, mid)
    assert (msg.content_sid, msg.channel) == (hx, "whatsapp")
    assert msg.body == "Time for your check-in"  # what the bot meant to say is kept


def test_never_wrote_is_outside_the_window(ob_settings: Settings, ctx: send.SendContext,
                                           emu: Emu, make_participant: Maker) -> None:
    p = make_participant(channel="whatsapp")
    send.deliver(ctx, [put(ob_settings.database_url, p)])
    assert emu.messages()[0]["content_sid"] == HX_EN


def test_no_template_falls_back_to_sms_with_consent(ob_settings: Settings,
                                                    ctx: send.SendContext, emu: Emu,
                                                    make_participant: Maker) -> None:
    p = make_participant(channel="whatsapp", language="fr")  # no French template
    mid = put(ob_settings.database_url, p)
    assert send.deliver(ctx, [mid])["sent"] == 1
    (sent,) = emu.messages()
    assert sent["to"] == p.phone and sent["from"] == ob_settings.sms_from
    assert sent["body"] == "Time for your check-in"
    assert row(ob_settings.database_url, mid).channel == "sms"


def test_no_template_and_no_sms_consent_is_undeliverable(
        ob_settings: Settings, ctx: send.SendContext, emu: Emu,
        make_participant: Maker) -> None:
    url = ob_settings.database_url
    p = make_participant(channel="whatsapp", language="fr", sms_consent=False)
    mid = put(url, p)
    assert send.deliver(ctx, [mid])["undeliverable"] == 1
    assert emu.messages() == []
    msg = row(url, mid)
    assert msg.status == "undeliverable"
    assert "no template for checkin/fr" in (msg.last_error or "")
    with session_scope(url) as db:
        entry = db.exec(select(AuditEntry)
                        .where(AuditEntry.action == "outbox.undeliverable")).one()
    assert entry.entity_id == str(mid)


def test_an_unknown_purpose_uses_the_default_template(
        tmp_path: Path, ob_settings: Settings, redis: Redis, emu: Emu,
        make_participant: Maker) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"default": {"en": {"content_sid": "HX" + "d" * 32}}}))
    settings = replace(ob_settings, whatsapp_templates=str(path))
    context = send.SendContext.create(settings, redis, status_callback=False)
    try:
        send.deliver(context, [put(settings.database_url, make_participant(channel="whatsapp"),
                                   purpose="visit_reminder")])
    finally:
        context.close()
    (sent,) = emu.messages()
    assert sent["content_sid"] == "HX" + "d" * 32 and json.loads(
        sent["content_variables"] or "{}") == {}


def test_a_broken_templates_file_is_refused_at_start(tmp_path: Path, ob_settings: Settings,
                                                     redis: Redis) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("checkin:\n  en: {content_sid: HX123, variables: {'1': '{diagnosis}'}}\n")
    with pytest.raises(templates.TemplateError, match="content_sid"):
        send.SendContext.create(replace(ob_settings, whatsapp_templates=str(path)), redis)
    path.write_text(f"checkin:\n  en: {{content_sid: {HX_EN}, "
                    "variables: {'1': '{diagnosis}'}}\n")
    with pytest.raises(templates.TemplateError, match="diagnosis"):
        templates.load(path)


# ---- 63016 through a status callback, with the real webhook ------------------------------------


def test_63016_from_a_callback_sends_the_template(cb_settings: Settings,
                                                  cb_ctx: send.SendContext, emu: Emu,
                                                  make_participant: Maker,
                                                  redis: Redis) -> None:
    url = cb_settings.database_url
    # We think the window is open (a message 2 h ago), but WhatsApp says it is not.
    p = make_participant(channel="whatsapp", last_inbound_at=utcnow() - timedelta(hours=2))
    emu.control.add_rule(63016, to=f"whatsapp:{p.phone}", times=1)
    mid = put(url, p)
    assert send.deliver(cb_ctx, [mid])["sent"] == 1
    assert wait_until(lambda: row(url, mid).status == "failed")
    assert wait_until(lambda: len(rows(url)) == 2)
    assert row(url, mid).error_code == 63016
    assert reload(url, p).whatsapp_window_closed
    retry = rows(url)[1]
    assert retry.status == "pending" and retry.last_error == f"retry of #{mid}: 63016: " \
        "outside the WhatsApp 24 h window"
    assert sweep_outbox(cb_settings, redis) == 1
    assert send.deliver(cb_ctx, [retry.id])["sent"] == 1
    first, second = emu.messages()
    assert first["body"] == "Time for your check-in" and first["content_sid"] is None
    assert second["content_sid"] == HX_EN and second["to"] == f"whatsapp:{p.phone}"


def test_63016_without_a_template_falls_back_to_sms(cb_settings: Settings,
                                                    cb_ctx: send.SendContext, emu: Emu,
                                                    make_participant: Maker) -> None:
    url = cb_settings.database_url
    p = make_participant(channel="whatsapp", language="sw",
                         last_inbound_at=utcnow() - timedelta(hours=1))
    emu.control.add_rule(63016, to=f"whatsapp:{p.phone}")
    mid = put(url, p, body="Habari")
    send.deliver(cb_ctx, [mid])
    assert wait_until(lambda: len(rows(url)) == 2)
    retry = rows(url)[1]
    assert send.deliver(cb_ctx, [retry.id])["sent"] == 1
    assert wait_until(lambda: row(url, retry.id).status == "delivered")
    assert [(m["to"], m["body"]) for m in emu.messages()] == [
        (f"whatsapp:{p.phone}", "Habari"), (p.phone, "Habari")]
    assert row(url, retry.id).channel == "sms"


def test_63016_without_template_or_sms_consent_is_undeliverable(
        cb_settings: Settings, cb_ctx: send.SendContext, emu: Emu,
        make_participant: Maker) -> None:
    url = cb_settings.database_url
    p = make_participant(channel="whatsapp", language="sw", sms_consent=False,
                         last_inbound_at=utcnow() - timedelta(hours=1))
    emu.control.add_rule(63016, to=f"whatsapp:{p.phone}")
    mid = put(url, p)
    send.deliver(cb_ctx, [mid])
    assert wait_until(lambda: len(rows(url)) == 2)
    retry = rows(url)[1]
    assert send.deliver(cb_ctx, [retry.id])["undeliverable"] == 1
    assert row(url, retry.id).status == "undeliverable"
    assert len(emu.messages()) == 1
