"""Pointing the real twilio client somewhere else."""

from __future__ import annotations

import pytest
from twilio.http.http_client import TwilioHttpClient

from bot.config import Settings
from bot.emulator import EmulatorHttpClient, EmulatorServer, client_from_settings

from .conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, PARTICIPANT


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
         "http://127.0.0.1:8010/2010-04-01/Accounts/AC1/Messages.json"),
        ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2&Page=1",
         "http://127.0.0.1:8010/2010-04-01/Accounts/AC1/Messages.json?PageSize=2&Page=1"),
        ("https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
         "http://127.0.0.1:8010/2010-04-01/Accounts/AC1/Messages.json"),
        ("https://lookups.twilio.com/v2/PhoneNumbers/+15551230001",
         "https://lookups.twilio.com/v2/PhoneNumbers/+15551230001"),
        ("https://api.twilio.com.example.org/x", "https://api.twilio.com.example.org/x"),
    ],
)
def test_rewrite(url: str, expected: str) -> None:
    assert EmulatorHttpClient("http://127.0.0.1:8010/").rewrite(url) == expected


def test_rewrite_keeps_a_base_path() -> None:
    client = EmulatorHttpClient("http://localhost:9000/twilio")
    assert client.rewrite("https://api.twilio.com/2010-04-01/A.json") == (
        "http://localhost:9000/twilio/2010-04-01/A.json")


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError):
        EmulatorHttpClient("ftp://example.org")


def test_client_from_settings(emulator: EmulatorServer) -> None:
    settings = Settings(twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                        twilio_api_base_url=emulator.url)
    client = client_from_settings(settings)
    assert isinstance(client.http_client, EmulatorHttpClient)
    message = client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="x")
    client.http_client.session.close()
    assert emulator.emulator.store.get(message.sid) is not None


def test_without_a_base_url_the_client_talks_to_twilio() -> None:
    client = client_from_settings(Settings(twilio_api_base_url=None))
    assert type(client.http_client) is TwilioHttpClient
    client.http_client.session.close()
