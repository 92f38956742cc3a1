"""Outbox fixtures: the emulator on a free port, settings pointing at it, participants,
the send context of one in-test "worker", the real webhook for status callbacks, and real
worker processes (`bot worker`) for the crash tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlmodel import Session, select
from werkzeug.serving import BaseWSGIServer, make_server

from bot import create_app, participants
from bot.config import Settings
from bot.emulator import EmulatorConfig, EmulatorServer
from bot.emulator import server as emulator_server
from bot.emulator.control import EmulatorControl
from bot.store.db import get_engine, session_scope
from bot.store.models import Message, Participant
from workers import send

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_SID = "AC" + "ab" * 16
AUTH_TOKEN = "outbox-test-auth-token"  # noqa: S105 - a test token
SMS_FROM = "+15005550006"
WHATSAPP_FROM = "+14155238886"
HX_EN = "HX" + "1" * 32
HX_ES = "HX" + "2" * 32


@dataclass
class Emu:
    server: EmulatorServer
    control: EmulatorControl

    @property
    def url(self) -> str:
        return self.server.url

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.control.messages(to=to) if m["direction"] == "outbound-api"]

    def slow_down(self, seconds: float) -> None:
        """Every create takes this long (a slow Twilio), so a crash can land mid-batch."""
        emulator = self.server.emulator
        create = emulator.create_message

        def slow(form: dict[str, list[str]]) -> dict[str, Any]:
            time.sleep(seconds)
            return create(form)

        emulator.create_message = slow  # type: ignore[method-assign]


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emu]:
    # socketserver's listen backlog of 5 resets connections when 16 sender threads connect
    # at once (one connection per request): Twilio does not do that to us.
    monkeypatch.setattr(emulator_server._Server, "request_queue_size", 128)
    config = EmulatorConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, sms_number=SMS_FROM,
                            whatsapp_number=WHATSAPP_FROM, step_delay=0.02,
                            callback_timeout=5.0)
    server = EmulatorServer(config).start()
    try:
        yield Emu(server, EmulatorControl(server.url))
    finally:
        server.stop()


@pytest.fixture
def templates_file(tmp_path: Path) -> Path:
    path = tmp_path / "templates.yaml"
    path.write_text(
        "checkin:\n"
        f"  en: {{content_sid: {HX_EN}, variables: {{'1': '{{study_name}}'}}}}\n"
        f"  es: {{content_sid: {HX_ES}, variables: {{'1': '{{study_name}}'}}}}\n",
        encoding="utf-8")
    return path


@pytest.fixture
def ob_settings(settings: Settings, redis_url: str, emu: Emu, templates_file: Path) -> Settings:
    return replace(settings, redis_url=redis_url, twilio_account_sid=ACCOUNT_SID,
                   twilio_auth_token=AUTH_TOKEN, twilio_api_base_url=emu.url,
                   sms_from=SMS_FROM, whatsapp_from=WHATSAPP_FROM, send_rate_limit="off",
                   whatsapp_templates=str(templates_file), study_name="HeartStudy",
                   public_base_url="http://127.0.0.1:9", outbox_lease_seconds=60)


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


Maker = Callable[..., Participant]


def daytime_zone(hour: int = 12) -> str:
    """An IANA zone where it is about `hour` o'clock now: tests must not depend on whether
    they run inside the participants' quiet hours."""
    offset = (hour - datetime.now(UTC).hour + 12) % 24 - 12  # -12 .. +11
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc signs are inverted


@pytest.fixture
def make_participant(ob_settings: Settings) -> Maker:
    counter = iter(range(1, 100_000))

    def make(*, language: str = "en", channel: str = "sms", consent: str = "opted_in",
             **changes: Any) -> Participant:
        n = next(counter)
        with session_scope(ob_settings.database_url) as db:
            p = participants.add(db, actor="staff:test", phone=f"+1617555{n:04d}",
                                 code=f"P{n:04d}", language=language, channel=channel,
                                 consent=consent,
                                 timezone=str(changes.pop("timezone", daytime_zone())))
            for name, value in changes.items():
                setattr(p, name, value)
            db.add(p)
        return p

    return make


@pytest.fixture
def ctx(ob_settings: Settings, redis: Redis) -> Iterator[send.SendContext]:
    """The send context of a worker running inside the test (no status callbacks)."""
    context = send.SendContext.create(ob_settings, redis, status_callback=False)
    yield context
    context.close()


def rows(url: str, *where: Any) -> list[Message]:
    with Session(get_engine(url), expire_on_commit=False) as db:
        return list(db.exec(select(Message).where(Message.direction == "out", *where)
                            .order_by(Message.id)).all())  # type: ignore[arg-type]


def row(url: str, message_id: int) -> Message:
    with Session(get_engine(url), expire_on_commit=False) as db:
        msg = db.get(Message, message_id)
        assert msg is not None
        return msg


def reload(url: str, p: Participant) -> Participant:
    with Session(get_engine(url), expire_on_commit=False) as db:
        found = db.get(Participant, p.id)
        assert found is not None
        return found


def wait_until(check: Callable[[], bool], timeout: float = 10.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


# ---- the real webhook, for status callbacks ----------------------------------------------


@dataclass
class Webhook:
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def webhook(ob_settings: Settings) -> Iterator[Webhook]:
    """The bot's Flask app on a free port: the emulator posts signed status callbacks.

    Signatures cover the public URL, so the app is made once the port is known."""
    apps: list[Any] = []
    server = make_server("127.0.0.1", 0, lambda env, start: apps[0](env, start), threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    apps.append(create_app(replace(ob_settings, public_base_url=url)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Webhook(server, thread)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture
def cb_settings(ob_settings: Settings, webhook: Webhook) -> Settings:
    return replace(ob_settings, public_base_url=webhook.url)


@pytest.fixture
def cb_ctx(cb_settings: Settings, redis: Redis) -> Iterator[send.SendContext]:
    """A send context whose messages ask for status callbacks to the live webhook."""
    context = send.SendContext.create(cb_settings, redis)
    yield context
    context.close()


# ---- worker processes -------------------------------------------------------------------------


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DATABASE_"))}
    env.update({
        "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url or "",
        "PUBLIC_BASE_URL": settings.public_base_url, "SMS_FROM": settings.sms_from,
        "WHATSAPP_FROM": settings.whatsapp_from or "",
        "SEND_RATE_LIMIT": settings.send_rate_limit or "",
        "WHATSAPP_TEMPLATES": settings.whatsapp_templates or "",
        "OUTBOX_LEASE_SECONDS": str(settings.outbox_lease_seconds),
        "OUTBOX_BATCH_SIZE": str(settings.outbox_batch_size),
        "OUTBOX_SEND_THREADS": str(settings.outbox_send_threads),
        "FLOWS_DIR": settings.flows_dir, "SECRET_KEY": settings.secret_key,
    })
    env.update(extra)
    return env


def start_worker(settings: Settings, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    """`bot worker` in its own process (`--burst` quits when the queues are empty)."""
    bot = Path(sys.executable).with_name("bot")
    return subprocess.Popen([str(bot), "worker", "--quiet", *args], cwd=ROOT,
                            env=worker_env(settings, **extra), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("worker did not finish:\n" + out.decode(errors="replace")) from None
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


def job_payloads(redis: Redis) -> list[dict[str, Any]]:
    """Every RQ job in Redis, as stored: its raw hash and its decoded call."""
    from rq.job import Job

    out = []
    for key in redis.scan_iter(match="rq:job:*"):
        if key.count(b":") != 2:  # rq:job:<id>:dependents and the like
            continue
        job_id = key.decode().split(":", 2)[2]
        raw = redis.hgetall(key)
        job = Job.fetch(job_id, connection=redis)
        out.append({"raw": raw, "func": job.func_name, "args": job.args, "kwargs": job.kwargs,
                    "description": job.description})
    return out


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
