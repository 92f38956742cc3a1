"""Logs carry events, masked numbers and ids: never bodies, full numbers, tokens or signatures."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from bot import conversation, logs
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.types import utcnow

from .conftest import TOKEN, Twilio, enrol, replies, sign

PHONE = "+16175550101"
SECRET_BODY = "my HIV medication makes me dizzy 7"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logs.configure(stream)
    try:
        yield stream
    finally:
        logging.getLogger(logs.LOGGER_NAME).removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_conversation_logs_no_body_and_no_number(app: Flask, app_settings: Settings,
                                                   twilio: Twilio,
                                                   captured: io.StringIO) -> None:
    url = app_settings.database_url
    p = enrol(url)
    with session_scope(url) as db:
        conversation.start_flow(db, p, "daily_checkin", utcnow(), settings=app_settings,
                                registry=app.extensions["trialbot"].registry)
    params = twilio.inbound_params(PHONE, SECRET_BODY)
    signature = sign("/twilio/messages", params)
    twilio.post("/twilio/messages", params, signature=signature,
                headers={"X-Request-Id": "abc-123"})
    twilio.post("/twilio/messages", params, signature="forged")  # a refused one too
    twilio.sms("+447700900123", "unknown sender text")
    twilio.sms(PHONE, "STOP")

    text = captured.getvalue()
    assert text
    for secret in (SECRET_BODY, "dizzy", PHONE, PHONE[1:], "7700900123", TOKEN, signature,
                   "unknown sender text"):
        assert secret not in text, secret
    events = lines(captured)
    inbound = [e for e in events if e.get("sid") == params["MessageSid"]]
    assert inbound and inbound[0]["request_id"] == "abc-123"
    assert inbound[0]["event"] == "inbound_replied"
    assert inbound[0]["phone"] == "+16*******01"
    assert inbound[0]["participant"] == "P001"
    assert any(e["event"] == "inbound_bad_signature" for e in events)
    assert any(e["event"] == "inbound_keyword_stop" or e["event"] == "inbound_replied"
               for e in events)


def test_the_filter_scrubs_what_slips_through(captured: io.StringIO) -> None:
    log = logs.get_logger("test")
    log.info("texting +1 (617) 555-0101 with token %s", TOKEN)
    log.warning("raw", extra={"fields": {"to": "whatsapp:+447700900123",
                                         "sig": "Xy0Zq1w2e3r4t5y6u7i8o9p0aS4=",
                                         "sid": "SMfedcba9876543210fedcba9876543210"}})
    try:
        raise ValueError("insert failed\n[parameters: ('+16175550101', 'I feel] (awful')]\n"
                         "(Background on this error at: https://sqlalche.me/e/21/gkpj)")
    except ValueError:
        log.exception("db_error")
    text = captured.getvalue()
    for secret in ("555-0101", "6175550101", TOKEN, "447700900123", "Xy0Zq1w2e3r4t5y6u7i8o9p0aS4=",
                   "I feel", "awful"):
        assert secret not in text, secret
    # Message SIDs, event names and masked numbers survive.
    assert "SMfedcba9876543210fedcba9876543210" in text
    assert "whatsapp:+44********23" in text
    assert [e["event"] for e in lines(captured)][-1] == "db_error"


def test_request_ids_are_never_taken_from_hostile_headers() -> None:
    assert logs.new_request_id("ok-1.2:3") == "ok-1.2:3"
    assert logs.new_request_id('x"}, {"phone": "+1617') != 'x"}, {"phone": "+1617'
    assert len(logs.new_request_id(None)) == 16


def test_replies_still_work_while_logging(twilio: Twilio, app: Flask, app_settings: Settings,
                                          captured: io.StringIO) -> None:
    enrol(app_settings.database_url)
    assert len(replies(twilio.sms(PHONE, "hello"))) == 1


def test_a_field_named_like_a_level_does_not_make_the_line_vanish(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logs.event(logs.get_logger("test"), "paged", level=2, code="E1")
    (record,) = [r for r in caplog.records if r.getMessage() == "paged"]
    assert record.levelno == logging.INFO
    assert record.fields == {"level_field": 2, "code": "E1"}  # type: ignore[attr-defined]
