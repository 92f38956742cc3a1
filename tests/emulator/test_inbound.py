"""A participant's message: a signed webhook POST like Twilio's, and the TwiML replies."""

from __future__ import annotations

import re

import pytest
from twilio.rest import Client

from bot.emulator import EmulatorServer
from bot.emulator.control import EmulatorControl, EmulatorError

from .conftest import ACCOUNT_SID, BOT_NUMBER, PARTICIPANT, Receiver, make_config, twiml

WEBHOOK = "/twilio/messages"


def echo(path: str, params: dict[str, str]) -> tuple[int, str, bytes]:
    return twiml(f"You said: {params['Body']}", "Reply 1 or 2.")


def test_sms_inbound_posts_a_signed_twilio_form(
    control: EmulatorControl, receiver: Receiver
) -> None:
    receiver.responder = echo
    result = control.inbound(PARTICIPANT, "hola ¿qué tal?")
    [call] = receiver.on(WEBHOOK)
    assert call.signature_ok
    params = call.params
    assert re.match(r"^SM[0-9a-f]{32}$", params["MessageSid"])
    assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"] == result["sid"]
    assert params["AccountSid"] == ACCOUNT_SID
    assert params["From"] == PARTICIPANT
    assert params["To"] == BOT_NUMBER
    assert params["Body"] == "hola ¿qué tal?"
    assert params["NumMedia"] == "0"
    assert params["NumSegments"] == "1"
    assert params["ApiVersion"] == "2010-04-01"
    assert params["SmsStatus"] == "received"
    assert params["FromCountry"] == "US"
    assert "WaId" not in params
    assert call.headers["user-agent"].startswith("TwilioProxy")
    assert call.headers["i-twilio-idempotency-token"]

    assert result["webhook_status"] == 200
    assert result["error"] is None
    assert [r["body"] for r in result["replies"]] == ["You said: hola ¿qué tal?", "Reply 1 or 2."]
    recorded = control.messages(to=PARTICIPANT)
    assert [(m["body"], m["status"], m["direction"], m["from"]) for m in recorded] == [
        ("You said: hola ¿qué tal?", "delivered", "outbound-reply", BOT_NUMBER),
        ("Reply 1 or 2.", "delivered", "outbound-reply", BOT_NUMBER),
    ]
    assert [m["index"] for m in recorded] == [r["index"] for r in result["replies"]]


def test_whatsapp_inbound(control: EmulatorControl, receiver: Receiver) -> None:
    receiver.responder = echo
    result = control.inbound(PARTICIPANT, "Sí", channel="whatsapp", profile_name="Ana")
    [call] = receiver.on(WEBHOOK)
    assert call.signature_ok
    assert call.params["From"] == "whatsapp:" + PARTICIPANT
    assert call.params["To"] == "whatsapp:+14155238886"
    assert call.params["WaId"] == PARTICIPANT.lstrip("+")
    assert call.params["ProfileName"] == "Ana"
    assert call.params["MessageType"] == "text"
    assert "FromCountry" not in call.params
    assert {r["to"] for r in result["replies"]} == {"whatsapp:" + PARTICIPANT}
    # `to=+1555...` finds the phone's messages on every channel.
    assert len(control.messages(to=PARTICIPANT)) == 2


def test_whatsapp_quick_reply_button(control: EmulatorControl, receiver: Receiver) -> None:
    control.inbound("whatsapp:" + PARTICIPANT, "Yes", button_text="Yes", button_payload="yes")
    [call] = receiver.on(WEBHOOK)
    assert call.params["MessageType"] == "button"
    assert call.params["ButtonText"] == "Yes"
    assert call.params["ButtonPayload"] == "yes"


def test_twiml_body_media_and_addressing(control: EmulatorControl, receiver: Receiver) -> None:
    document = (
        b'<?xml version="1.0" encoding="UTF-8"?><Response>'
        b"<Message><Body>See the map</Body><Media>https://example.org/map.png</Media></Message>"
        b'<Message to="+15551230009">Escalation for the nurse</Message>'
        b"<Redirect>https://example.org/next</Redirect>"
        b"</Response>"
    )
    receiver.responder = lambda path, params: (200, "application/xml; charset=utf-8", document)
    result = control.inbound(PARTICIPANT, "help")
    first, second = result["replies"]
    assert first["body"] == "See the map"
    assert first["media_urls"] == ["https://example.org/map.png"]
    assert first["sid"].startswith("MM")
    assert (second["to"], second["body"]) == ("+15551230009", "Escalation for the nurse")


@pytest.mark.parametrize(
    "answer",
    [
        (200, "text/xml", b'<?xml version="1.0" encoding="UTF-8"?><Response />'),
        (200, "text/xml", b""),
        (204, "", b""),
    ],
    ids=["empty-response", "empty-body", "no-content"],
)
def test_no_reply(
    control: EmulatorControl, receiver: Receiver, answer: tuple[int, str, bytes]
) -> None:
    receiver.responder = lambda path, params: answer
    result = control.inbound(PARTICIPANT, "ok")
    assert result["replies"] == [] and result["error"] is None
    assert control.messages(to=PARTICIPANT) == []


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((500, "text/plain", b"boom"), 11200),
        ((403, "text/plain", b"bad signature"), 11200),
        ((200, "application/json", b'{"reply": "hi"}'), 12300),
        ((200, "text/html", b"<html><body>hi</body></html>"), 12300),
        ((200, "text/xml", b"<Response><Message>unclosed"), 12100),
        ((200, "text/xml", b"<Reply>hi</Reply>"), 12100),
    ],
)
def test_webhook_failures_are_reported_with_twilio_codes(
    control: EmulatorControl, receiver: Receiver, answer: tuple[int, str, bytes], code: int
) -> None:
    receiver.responder = lambda path, params: answer
    result = control.inbound(PARTICIPANT, "hi")
    assert result["error"]["code"] == code
    assert result["replies"] == []


def test_unreachable_webhook(receiver: Receiver) -> None:
    config = make_config(receiver, webhook_url="http://127.0.0.1:9/twilio/messages")
    with EmulatorServer(config) as emu:
        result = EmulatorControl(emu.url).inbound(PARTICIPANT, "hi")
    assert result["error"]["code"] == 11200
    assert result["webhook_status"] is None


@pytest.mark.parametrize(
    "payload",
    [
        {"body": "no sender"},
        {"from": "5551230001", "body": "not E.164"},
        {"from": PARTICIPANT, "body": 3},
        {"from": PARTICIPANT, "body": "x", "channel": "fax"},
        {"from": PARTICIPANT, "body": "x", "profile_name": 7},
    ],
)
def test_bad_inbound_payload_is_400(control: EmulatorControl, payload: dict[str, object]) -> None:
    with pytest.raises(EmulatorError, match="HTTP 400"):
        control._call("POST", "/_emulator/inbound", payload)


def test_inbound_messages_are_listed_by_the_rest_api(
    control: EmulatorControl, receiver: Receiver, client: Client
) -> None:
    receiver.responder = echo
    result = control.inbound(PARTICIPANT, "hello")
    [inbound] = client.messages.list(from_=PARTICIPANT)
    assert inbound.sid == result["sid"]
    assert inbound.direction == "inbound"
    assert inbound.status == "received"
    replies = client.messages.list(to=PARTICIPANT)
    assert {m.direction for m in replies} == {"outbound-reply"}


def test_since_and_reset(control: EmulatorControl, receiver: Receiver) -> None:
    receiver.responder = echo
    control.inbound(PARTICIPANT, "one")
    after = max(m["index"] for m in control.messages(to=PARTICIPANT)) + 1
    control.inbound(PARTICIPANT, "two")
    newer = control.messages(to=PARTICIPANT, since=after)
    assert [m["body"] for m in newer] == ["You said: two", "Reply 1 or 2."]
    control.reset()
    assert control.messages() == []
    control.inbound(PARTICIPANT, "three")
    # Indexes are never reused, so a poller holding an old `since` misses nothing.
    assert min(m["index"] for m in control.messages()) > max(m["index"] for m in newer)
