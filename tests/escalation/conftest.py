"""Escalation fixtures: the app on each database with real Redis, the Twilio emulator for
outbound SMS, a real SMTP server on loopback (aiosmtpd) for email alerts, a roster in the
database, and requests signed like Twilio's."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import uuid
import xml.etree.ElementTree as ET  # noqa: N817
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message as Email
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlmodel import Session, col, select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from bot import create_app, navigators, participants
from bot.config import Settings
from bot.emulator import EmulatorConfig, EmulatorServer
from bot.emulator.control import EmulatorControl
from bot.engine.roster import read_roster_text
from bot.store.db import get_engine, session_scope
from bot.store.models import AuditEntry, Escalation, EscalationAlert, Message, Participant
from workers import send

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "0123456789abcdef0123456789abcdef"  # noqa: S105 - a test auth token
ACCOUNT_SID = "AC" + "cd" * 16
BASE = "https://bot.example.org"
OUR_NUMBER = "+15005550006"
ANA, BEN, DANA = "+16175550150", "+16175550151", "+16175550153"
PARTICIPANT = "+16175550101"

#: Ana is primary and Ben backup around the clock: what the real clock says does not matter.
ROSTER = f"""\
timezone: America/New_York
navigators:
  - name: ana
    phone: "{ANA}"
    email: ana@example.org
    language: es
    channels: [sms, email]
  - name: ben
    phone: "{BEN}"
    email: ben@example.org
    channels: [sms, email]
  - name: dana
    phone: "{DANA}"
    email: dana@example.org
    channels: [sms, email]
coordinator: dana
on_call:
  - days: daily
    from: "00:00"
    to: "24:00"
    primary: ana
    backup: ben
"""


# ---- SMTP ---------------------------------------------------------------------------------


@dataclass
class Smtp:
    """A real SMTP server on loopback. `fail_next` answers that many messages with 451;
    `hold` makes the next message wait (a worker can be killed while it sends)."""

    port: int
    accepted: list[Email] = field(default_factory=list)
    refused: int = 0
    fail_next: int = 0
    hold: threading.Event | None = None
    holding: threading.Event = field(default_factory=threading.Event)
    controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.hold is not None:
            gate, self.hold = self.hold, None
            self.holding.set()
            while not gate.is_set():
                await asyncio.sleep(0.02)
            self.refused += 1
            return "451 4.3.0 the connection was lost"
        if self.fail_next > 0:
            self.fail_next -= 1
            self.refused += 1
            return "451 4.3.0 Try again later"
        self.accepted.append(message_from_bytes(envelope.original_content))
        return "250 OK"

    def to(self, address: str) -> list[Email]:
        return [m for m in self.accepted if m["To"] == address]

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp(free_port())
    server.start()
    try:
        yield server
    finally:
        if server.hold is not None:
            server.hold.set()
        server.stop()


# ---- Twilio emulator ------------------------------------------------------------------------


@dataclass
class Emu:
    server: EmulatorServer
    control: EmulatorControl

    def to(self, number: str) -> list[dict[str, Any]]:
        return [m for m in self.control.messages(to=number) if m["direction"] == "outbound-api"]


@pytest.fixture
def emu() -> Iterator[Emu]:
    config = EmulatorConfig(account_sid=ACCOUNT_SID, auth_token=TOKEN, sms_number=OUR_NUMBER,
                            step_delay=0.01, callback_timeout=2.0)
    server = EmulatorServer(config).start()
    try:
        yield Emu(server, EmulatorControl(server.url))
    finally:
        server.stop()


# ---- the app ----------------------------------------------------------------------------------


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the shipped flows and study.yaml, so a test may change the policy."""
    target = tmp_path / "flows"
    target.mkdir()
    for path in (ROOT / "flows").glob("*.yaml"):
        shutil.copy(path, target / path.name)
    (target / "roster.yaml").write_text(ROSTER, encoding="utf-8")
    return target


@pytest.fixture
def esc_settings(settings: Settings, redis_url: str, flows_dir: Path, emu: Emu,
                 smtp: Smtp) -> Settings:
    return replace(settings, redis_url=redis_url, flows_dir=str(flows_dir),
                   public_base_url=BASE, twilio_auth_token=TOKEN,
                   twilio_account_sid=ACCOUNT_SID, twilio_api_base_url=emu.server.url,
                   sms_from=OUR_NUMBER, send_rate_limit="off", study_contact="+16175550123",
                   smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="bot@example.org",
                   outbox_lease_seconds=60)


@pytest.fixture
def roster(esc_settings: Settings) -> None:
    """The test roster in the database (as `bot navigators load` puts it there)."""
    loaded, problems = read_roster_text(ROSTER, "roster.yaml")
    assert loaded is not None and problems == []
    with session_scope(esc_settings.database_url) as db:
        navigators.replace_roster(db, loaded, actor="staff:test")


@pytest.fixture
def app(esc_settings: Settings, roster: None) -> Flask:
    return create_app(esc_settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def ctx(esc_settings: Settings, redis: Redis) -> Iterator[send.SendContext]:
    """An in-test send worker, delivering outbox rows to the emulator."""
    context = send.SendContext.create(esc_settings, redis, status_callback=False)
    yield context
    context.close()


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


class Twilio:
    """Posts inbound messages the way Twilio does: form-encoded and signed."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def params(self, phone: str, body: str, sid: str | None = None) -> dict[str, str]:
        return {"MessageSid": sid or new_sid(), "AccountSid": ACCOUNT_SID, "From": phone,
                "To": OUR_NUMBER, "Body": body, "NumMedia": "0", "NumSegments": "1"}

    def post(self, params: Mapping[str, str]) -> TestResponse:
        signature = RequestValidator(TOKEN).compute_signature(BASE + "/twilio/messages",
                                                              dict(params))
        return self.client.post("/twilio/messages", data=dict(params),
                                headers={"X-Twilio-Signature": signature})

    def sms(self, phone: str, body: str, sid: str | None = None) -> list[str]:
        return replies(self.post(self.params(phone, body, sid)))


@pytest.fixture
def twilio(client: FlaskClient) -> Twilio:
    return Twilio(client)


def replies(response: TestResponse) -> list[str]:
    assert response.status_code == 200, response.data
    root = ET.fromstring(response.data)  # noqa: S314 - our own output
    return [m.text or "" for m in root.findall("Message")]


def enrol(url: str, *, phone: str = PARTICIPANT, code: str = "P001", language: str = "es",
          consent: str = "opted_in") -> Participant:
    with session_scope(url) as db:
        return participants.add(db, actor="staff:test", phone=phone, code=code,
                                language=language, timezone="America/New_York",
                                consent=consent)


@pytest.fixture
def participant(app: Flask, esc_settings: Settings) -> Participant:
    return enrol(esc_settings.database_url)


# ---- reading the database -----------------------------------------------------------------


def escalations(url: str) -> list[Escalation]:
    with Session(get_engine(url), expire_on_commit=False) as db:
        return list(db.exec(select(Escalation).order_by(col(Escalation.id))).all())


def alerts(url: str) -> list[tuple[int, str, str, str]]:
    """(level, navigator, channel, status) of every alert, in order."""
    from bot.store.models import Navigator

    with Session(get_engine(url), expire_on_commit=False) as db:
        rows = db.exec(select(EscalationAlert, Navigator)
                       .join(Navigator, col(Navigator.id) == col(EscalationAlert.navigator_id))
                       .order_by(col(EscalationAlert.id))).all()
        return [(a.level, n.name, a.channel, a.status) for a, n in rows]


def outbound(url: str, *where: Any) -> list[Message]:
    with Session(get_engine(url), expire_on_commit=False) as db:
        return list(db.exec(select(Message).where(Message.direction == "out", *where)
                            .order_by(col(Message.id))).all())


def trail(url: str, code: str) -> list[AuditEntry]:
    with Session(get_engine(url), expire_on_commit=False) as db:
        return list(db.exec(select(AuditEntry).where(AuditEntry.entity == "escalation",
                                                     AuditEntry.entity_id == code)
                            .order_by(col(AuditEntry.id))).all())


def deliver_all(ctx: send.SendContext, url: str, now: Any = None) -> dict[str, int]:
    """What a send worker would do now: deliver every due outbox row."""
    ids = [m.id for m in outbound(url, col(Message.status).in_(("pending", "sending")))
           if m.id is not None]
    return send.deliver(ctx, ids, now)
