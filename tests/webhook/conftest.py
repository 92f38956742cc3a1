"""Webhook fixtures: the app on each database, real Redis, and requests signed like Twilio's."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from bot import create_app, participants
from bot.config import Settings
from bot.store.db import get_engine, session_scope
from bot.store.models import Participant

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 - a test auth token
BASE = "https://bot.example.org"
CONTACT = "+1 617 555 0123"
OUR_NUMBER = "+15005550006"

#: Every table a webhook request may write, for "nothing was stored" checks.
TABLES = ("message", "answer", "conversation_session", "unknown_sender_reply", "audit_entry",
          "status_callback", "escalation", "consent_change", "participant", "flow_version")


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows, so a test may amend a flow file."""
    target = tmp_path / "flows"
    target.mkdir()
    for path in (ROOT / "flows").glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture
def app_settings(settings: Settings, redis_url: str, flows_dir: Path) -> Settings:
    return replace(settings, redis_url=redis_url, flows_dir=str(flows_dir),
                   public_base_url=BASE, twilio_auth_token=TOKEN, study_contact=CONTACT,
                   sms_from=OUR_NUMBER)


@pytest.fixture
def app(app_settings: Settings) -> Flask:
    return create_app(app_settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def sign(path: str, params: Mapping[str, str], token: str = TOKEN, base: str = BASE) -> str:
    return RequestValidator(token).compute_signature(base + path, dict(params))


class Twilio:
    """Sends requests the way Twilio does: form-encoded and signed."""

    def __init__(self, client: FlaskClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def inbound_params(self, phone: str, body: str, sid: str | None = None,
                       channel: str = "sms", **extra: str) -> dict[str, str]:
        sender = f"whatsapp:{phone}" if channel == "whatsapp" else phone
        to = f"whatsapp:{OUR_NUMBER}" if channel == "whatsapp" else OUR_NUMBER
        params = {"MessageSid": sid or new_sid(), "AccountSid": "AC" + "0" * 32,
                  "From": sender, "To": to, "Body": body, "NumMedia": "0", "NumSegments": "1",
                  "ApiVersion": "2010-04-01"}
        params.update(extra)
        return params

    def post(self, path: str, params: Mapping[str, str], *, signature: str | None = "auto",
             headers: Mapping[str, str] | None = None) -> TestResponse:
        all_headers = dict(headers or {})
        if signature == "auto":
            all_headers["X-Twilio-Signature"] = sign(path, params)
        elif signature is not None:
            all_headers["X-Twilio-Signature"] = signature
        return self.client.post(path, data=dict(params), headers=all_headers)

    def sms(self, phone: str, body: str, sid: str | None = None, channel: str = "sms",
            **extra: str) -> TestResponse:
        return self.post("/twilio/messages",
                         self.inbound_params(phone, body, sid, channel, **extra))

    def status(self, sid: str, status: str, error_code: int | None = None) -> TestResponse:
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32}
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return self.post("/twilio/status", params)


@pytest.fixture
def twilio(client: FlaskClient, app_settings: Settings) -> Twilio:
    return Twilio(client, app_settings)


def replies(response: TestResponse) -> list[str]:
    """The <Message> texts of a TwiML reply."""
    import xml.etree.ElementTree as ET  # noqa: N817

    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)  # noqa: S314 - our own output
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


def enrol(url: str, phone: str = "+16175550101", code: str = "P001", language: str = "en",
          **kw: Any) -> Participant:
    with session_scope(url) as db:
        return participants.add(db, actor="staff:test", phone=phone, code=code,
                                language=language, timezone=kw.pop("timezone", "America/New_York"),
                                **kw)


def counts(url: str) -> dict[str, int]:
    with get_engine(url).connect() as conn:
        out = {t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())  # noqa: S608
               for t in TABLES}
        conn.rollback()
    return out


def rows(url: str, model: Any, *where: Any) -> list[Any]:
    with Session(get_engine(url), expire_on_commit=False) as db:
        return list(db.exec(select(model).where(*where)).all())


def participant(url: str, code: str = "P001") -> Participant:
    with Session(get_engine(url), expire_on_commit=False) as db:
        return db.exec(select(Participant).where(Participant.code == code)).one()


@pytest.fixture
def enrolled(app: Flask, app_settings: Settings) -> Iterator[Participant]:
    yield enrol(app_settings.database_url)
