"""The REST API as the real twilio client and Twilio's OpenAPI schema see it."""

from __future__ import annotations

import base64
import json
import logging
import re
import urllib.parse
from typing import Any

import jsonschema
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.emulator import EmulatorServer, twilio_client
from bot.emulator.transport import request

from .conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BOT_NUMBER,
    PARTICIPANT,
    Receiver,
    make_config,
    validate_list,
    validate_message,
)

SID = re.compile(r"^SM[0-9a-f]{32}$")
CONTENT_SID = "HX" + "0123456789abcdef" * 2


def api(
    emulator: EmulatorServer,
    method: str,
    path: str,
    form: dict[str, Any] | None = None,
    auth: tuple[str, str] = (ACCOUNT_SID, AUTH_TOKEN),
) -> tuple[int, Any]:
    """A raw call, to see exactly what goes over the wire."""
    token = base64.b64encode(":".join(auth).encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form, doseq=True).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    url = f"{emulator.url}/2010-04-01/Accounts/{ACCOUNT_SID}{path}"
    result = request(method, url, data=data, headers=headers)
    return result.status, result.json()


def test_create_with_body_returns_a_queued_message(client: Client) -> None:
    message = client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="Hello!")
    assert SID.match(message.sid)
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.to == PARTICIPANT
    assert message.from_ == BOT_NUMBER
    assert message.body == "Hello!"
    assert message.num_segments == "1"
    assert message.account_sid == ACCOUNT_SID
    assert message.error_code is None
    assert message.date_created is not None and message.date_created.tzinfo is not None


def test_create_with_content_template(client: Client) -> None:
    message = client.messages.create(
        to="whatsapp:" + PARTICIPANT,
        from_="whatsapp:" + BOT_NUMBER,
        content_sid=CONTENT_SID,
        content_variables=json.dumps({"1": "Ana", "2": "15:00"}),
    )
    assert SID.match(message.sid)
    assert message.status == "queued"
    assert message.to == "whatsapp:" + PARTICIPANT
    assert message.body == f"[template {CONTENT_SID}: 1=Ana, 2=15:00]"


def test_known_templates_are_rendered(receiver: Receiver) -> None:
    config = make_config(receiver, templates={CONTENT_SID: "Hi {{1}}, see you at {{2}}."})
    with EmulatorServer(config) as emu:
        twilio = twilio_client(emu.url, ACCOUNT_SID, AUTH_TOKEN)
        message = twilio.messages.create(
            to=PARTICIPANT, from_=BOT_NUMBER, content_sid=CONTENT_SID,
            content_variables=json.dumps({"1": "Ana", "2": "15:00"}),
        )
        twilio.http_client.session.close()
    assert message.body == "Hi Ana, see you at 15:00."


@pytest.mark.parametrize(
    "form",
    [
        {"To": PARTICIPANT, "From": BOT_NUMBER, "Body": "Hello! 👍"},
        {"To": PARTICIPANT, "From": BOT_NUMBER, "MediaUrl": ["https://example.org/a.png"]},
        {"To": "whatsapp:" + PARTICIPANT, "From": "whatsapp:" + BOT_NUMBER,
         "ContentSid": CONTENT_SID, "ContentVariables": '{"1": "Ana"}',
         "StatusCallback": "http://127.0.0.1:9/status"},
        {"To": PARTICIPANT, "MessagingServiceSid": "MG" + "a" * 32, "Body": "via a service"},
    ],
    ids=["body", "media", "content", "service"],
)
def test_create_response_matches_twilio_openapi(
    emulator: EmulatorServer, form: dict[str, Any]
) -> None:
    status, resource = api(emulator, "POST", "/Messages.json", form)
    assert status == 201
    validate_message(resource)
    assert resource["status"] == "queued"
    assert resource["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{resource['sid']}.json"


def test_media_messages_are_mms(emulator: EmulatorServer) -> None:
    form = {"To": PARTICIPANT, "From": BOT_NUMBER, "Body": "look",
            "MediaUrl": ["https://example.org/a.png", "https://example.org/b.png"]}
    status, resource = api(emulator, "POST", "/Messages.json", form)
    assert status == 201
    assert resource["sid"].startswith("MM")
    assert resource["num_media"] == "2"


def test_service_sends_get_a_sender_from_the_pool(emulator: EmulatorServer) -> None:
    service = "MG" + "a" * 32
    _, sms = api(emulator, "POST", "/Messages.json",
                 {"To": PARTICIPANT, "MessagingServiceSid": service, "Body": "x"})
    _, wa = api(emulator, "POST", "/Messages.json",
                {"To": "whatsapp:" + PARTICIPANT, "MessagingServiceSid": service, "Body": "x"})
    assert sms["from"] == BOT_NUMBER
    assert sms["messaging_service_sid"] == service
    assert wa["from"] == "whatsapp:+14155238886"


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("€" * 80, "1"),  # extension characters cost two septets
        ("€" * 81, "2"),
        ("¿Cómo estás?" + "a" * 58, "1"),  # ó forces UCS-2: 70 per segment
        ("¿Cómo estás?" + "a" * 59, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
    ],
)
def test_num_segments_follow_gsm7_and_ucs2(client: Client, body: str, segments: str) -> None:
    message = client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body=body)
    assert message.num_segments == segments


def test_fetch_and_list(client: Client, emulator: EmulatorServer) -> None:
    other = "+15551230002"
    sent = [client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body=f"m{i}")
            for i in range(5)]
    client.messages.create(to=other, from_=BOT_NUMBER, body="someone else")

    fetched = client.messages(sent[0].sid).fetch()
    assert fetched.sid == sent[0].sid
    assert fetched.body == "m0"

    # page_size=2 makes the client follow next_page_uri through the emulator twice.
    listed = client.messages.list(to=PARTICIPANT, page_size=2)
    assert [m.body for m in listed] == ["m4", "m3", "m2", "m1", "m0"]  # newest first
    assert [m.to for m in client.messages.list(to=other)] == [other]
    assert len(client.messages.list(from_=BOT_NUMBER, limit=3)) == 3

    status, page = api(emulator, "GET", "/Messages.json?" + urllib.parse.urlencode(
        {"To": PARTICIPANT, "PageSize": 2}))
    assert status == 200
    validate_list(page)
    assert page["page_size"] == 2 and len(page["messages"]) == 2
    assert page["next_page_uri"] is not None and page["previous_page_uri"] is None

    status, one = api(emulator, "GET", f"/Messages/{sent[1].sid}.json")
    assert status == 200
    validate_message(one)


def test_unknown_message_is_twilio_404(client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert caught.value.status == 404
    assert caught.value.code == 20404


def test_wrong_auth_token_is_401_20003(emulator: EmulatorServer) -> None:
    bad = twilio_client(emulator.url, ACCOUNT_SID, "not-the-token")
    with pytest.raises(TwilioRestException) as caught:
        bad.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="x")
    bad.http_client.session.close()
    assert caught.value.status == 401
    assert caught.value.code == 20003

    status, payload = api(emulator, "POST", "/Messages.json",
                          {"To": PARTICIPANT, "From": BOT_NUMBER, "Body": "x"},
                          auth=(ACCOUNT_SID, "wrong"))
    assert status == 401
    assert payload == {"code": 20003, "message": "Authenticate",
                       "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}


def test_missing_auth_is_401(emulator: EmulatorServer) -> None:
    result = request("GET", f"{emulator.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    assert result.status == 401
    assert result.json()["code"] == 20003
    assert result.headers["www-authenticate"].startswith("Basic")


def test_api_key_auth(receiver: Receiver) -> None:
    key, secret = "SK" + "1" * 32, "key-secret"
    with EmulatorServer(make_config(receiver, api_keys={key: secret})) as emu:
        good = twilio_client(emu.url, ACCOUNT_SID, "", api_key=key, api_secret=secret)
        assert good.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="x").status == "queued"
        bad = twilio_client(emu.url, ACCOUNT_SID, "", api_key=key, api_secret="wrong")
        with pytest.raises(TwilioRestException) as caught:
            bad.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="x")
        good.http_client.session.close()
        bad.http_client.session.close()
    assert caught.value.code == 20003


def test_other_account_is_not_found(client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        # Our credentials, someone else's account in the path.
        client.api.v2010.accounts("AC" + "f" * 32).messages.create(
            to=PARTICIPANT, from_=BOT_NUMBER, body="x")
    assert caught.value.status == 404
    assert caught.value.code == 20404


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": BOT_NUMBER, "Body": "x"}, 21604),
        ({"To": "", "From": BOT_NUMBER, "Body": "x"}, 21604),
        ({"To": PARTICIPANT, "From": BOT_NUMBER}, 21619),
        ({"To": PARTICIPANT, "From": BOT_NUMBER, "Body": ""}, 21619),
        ({"To": "5551230001", "From": BOT_NUMBER, "Body": "x"}, 21211),
        ({"To": PARTICIPANT, "Body": "x"}, 21603),
        ({"To": "whatsapp:" + PARTICIPANT, "From": BOT_NUMBER, "Body": "x"}, 21910),
        ({"To": PARTICIPANT, "From": "whatsapp:" + BOT_NUMBER, "Body": "x"}, 21910),
        ({"To": PARTICIPANT, "From": BOT_NUMBER, "Body": "x" * 1601}, 21617),
        ({"To": PARTICIPANT, "From": BOT_NUMBER, "ContentSid": "HX123"}, 21655),
        ({"To": PARTICIPANT, "From": BOT_NUMBER, "ContentSid": CONTENT_SID,
          "ContentVariables": "{not json"}, 21656),
        ({"To": PARTICIPANT, "From": BOT_NUMBER, "ContentSid": CONTENT_SID,
          "ContentVariables": "[1]"}, 21656),
        ({"To": PARTICIPANT, "From": BOT_NUMBER, "Body": "x", "StatusCallback": "not a url"},
         21609),
        ({"To": PARTICIPANT, "MessagingServiceSid": "MGnope", "Body": "x"}, 21701),
    ],
)
def test_invalid_requests_are_twilio_400s(
    emulator: EmulatorServer, form: dict[str, Any], code: int
) -> None:
    status, payload = api(emulator, "POST", "/Messages.json", form)
    assert status == 400
    assert payload["code"] == code
    assert payload["status"] == 400
    assert payload["more_info"].endswith(str(code))


def test_client_sees_validation_errors_as_exceptions(client: Client) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER)
    assert caught.value.code == 21619
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="whatsapp:" + PARTICIPANT, from_=BOT_NUMBER, body="x")
    assert caught.value.code == 21910


def test_info_logs_carry_no_bodies_or_numbers(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.emulator")
    client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="my private symptoms")
    client.messages.list(to=PARTICIPANT)
    assert "accepted" in caplog.text
    assert "my private symptoms" not in caplog.text
    assert PARTICIPANT not in caplog.text


def test_schema_check_is_not_vacuous(emulator: EmulatorServer) -> None:
    _, resource = api(emulator, "POST", "/Messages.json",
                      {"To": PARTICIPANT, "From": BOT_NUMBER, "Body": "x"})
    for key, bad in [("sid", "XX123"), ("status", "done"), ("num_segments", 1),
                     ("date_created", "2026-11-24T01:00:00Z"), ("error_code", "30003")]:
        with pytest.raises(jsonschema.ValidationError):
            validate_message({**resource, key: bad})
    with pytest.raises(AssertionError):
        validate_message({**resource, "extra": 1})
