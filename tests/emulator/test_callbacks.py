"""Status callbacks: signed like Twilio's, in order, retried when the receiver fails."""

from __future__ import annotations

import time

from twilio.rest import Client

from bot.emulator import EmulatorServer, twilio_client

from .conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, PARTICIPANT, Receiver, make_config


def wait_status(client: Client, sid: str, status: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    current = ""
    while time.monotonic() < deadline:
        current = client.messages(sid).fetch().status
        if current == status:
            break
        time.sleep(0.02)
    return current


def test_callbacks_arrive_signed_and_in_order(client: Client, receiver: Receiver) -> None:
    url = receiver.url("/twilio/status")
    message = client.messages.create(
        to=PARTICIPANT, from_=BOT_NUMBER, body="Hello", status_callback=url
    )
    calls = receiver.wait_for("/twilio/status", 3)
    assert [c.params["MessageStatus"] for c in calls] == ["queued", "sent", "delivered"]
    for call in calls:
        assert call.signature_ok, "X-Twilio-Signature must validate for the callback URL"
        assert call.params["MessageSid"] == message.sid
        assert call.params["SmsSid"] == message.sid
        assert call.params["AccountSid"] == ACCOUNT_SID
        assert call.params["From"] == BOT_NUMBER
        assert call.params["To"] == PARTICIPANT
        assert call.params["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in call.params
        assert call.headers["content-type"].startswith("application/x-www-form-urlencoded")
    fetched = client.messages(message.sid).fetch()
    assert fetched.status == "delivered"
    assert fetched.date_sent is not None


def test_many_messages_each_keep_their_order(client: Client, receiver: Receiver) -> None:
    url = receiver.url("/twilio/status")
    sids = [client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body=str(i),
                                   status_callback=url).sid for i in range(10)]
    calls = receiver.wait_for("/twilio/status", 30)
    assert len(calls) == 30
    for sid in sids:
        statuses = [c.params["MessageStatus"] for c in calls if c.params["MessageSid"] == sid]
        assert statuses == ["queued", "sent", "delivered"]


def test_whatsapp_callbacks_name_the_channel(client: Client, receiver: Receiver) -> None:
    client.messages.create(to="whatsapp:" + PARTICIPANT, from_="whatsapp:" + BOT_NUMBER,
                           body="Hi", status_callback=receiver.url("/twilio/status"))
    calls = receiver.wait_for("/twilio/status", 3)
    assert {c.params["ChannelPrefix"] for c in calls} == {"whatsapp"}
    assert calls[0].params["To"] == "whatsapp:" + PARTICIPANT


def test_status_moves_on_without_a_callback(client: Client, receiver: Receiver) -> None:
    message = client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="Hello")
    assert wait_status(client, message.sid, "delivered") == "delivered"
    assert receiver.on("/twilio/status") == []


def test_failed_callbacks_are_retried(receiver: Receiver) -> None:
    answers = iter([500, 503])  # the first two POSTs fail, then the receiver recovers

    def flaky(path: str, params: dict[str, str]) -> tuple[int, str, bytes]:
        return next(answers, 204), "text/plain", b""

    receiver.responder = flaky
    with EmulatorServer(make_config(receiver)) as emu:
        twilio = twilio_client(emu.url, ACCOUNT_SID, AUTH_TOKEN)
        twilio.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="x",
                               status_callback=receiver.url("/twilio/status"))
        calls = receiver.wait_for("/twilio/status", 5)
        twilio.http_client.session.close()
    assert [c.params["MessageStatus"] for c in calls] == [
        "queued", "queued", "queued", "sent", "delivered"]


def test_client_errors_are_not_retried(receiver: Receiver) -> None:
    receiver.responder = lambda path, params: (403, "text/plain", b"")
    with EmulatorServer(make_config(receiver)) as emu:
        twilio = twilio_client(emu.url, ACCOUNT_SID, AUTH_TOKEN)
        message = twilio.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="x",
                                         status_callback=receiver.url("/twilio/status"))
        assert wait_status(twilio, message.sid, "delivered") == "delivered"
        calls = receiver.wait_for("/twilio/status", 3)
        twilio.http_client.session.close()
    assert [c.params["MessageStatus"] for c in calls] == ["queued", "sent", "delivered"]


def test_unreachable_callback_does_not_stop_delivery(client: Client) -> None:
    # Port 9 (discard) is closed on test machines: every attempt fails at connect.
    message = client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="x",
                                     status_callback="http://127.0.0.1:9/status")
    assert wait_status(client, message.sid, "delivered") == "delivered"
