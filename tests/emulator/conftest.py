"""Emulator fixtures: the emulator on a free port, a local receiver standing in for the bot's
webhook and status-callback endpoints, and the real twilio client pointed at the emulator."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.emulator import EmulatorConfig, EmulatorServer, twilio_client
from bot.emulator.control import EmulatorControl

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "emulator-test-auth-token"
BOT_NUMBER = "+15005550006"
PARTICIPANT = "+15551230001"
SCHEMA_FILE = Path(__file__).with_name("message_schema.json")

#: (status, content type, body) for a request the receiver got: (path, form params).
Responder = Callable[[str, dict[str, str]], tuple[int, str, bytes]]


@dataclass
class Received:
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    signature_ok: bool


def twiml(*messages: str) -> tuple[int, str, bytes]:
    inner = "".join(f"<Message>{m}</Message>" for m in messages)
    document = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'
    return 200, "text/xml", document.encode()


@dataclass
class Receiver:
    """A stand-in for the bot: records signed POSTs, answers through `responder`."""

    responder: Responder = field(default=lambda path, params: twiml())
    requests: list[Received] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def record(self, path: str, params: dict[str, str], headers: dict[str, str]) -> Received:
        signature = headers.get("x-twilio-signature", "")
        ok = RequestValidator(AUTH_TOKEN).validate(self.url(path), params, signature)
        item = Received(path, params, headers, ok)
        with self.cond:
            self.requests.append(item)
            self.cond.notify_all()
        return item

    def on(self, path: str) -> list[Received]:
        with self.cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len([r for r in self.requests if r.path == path]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return [r for r in self.requests if r.path == path]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            params = {k: v[0] for k, v in form.items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.record(self.path, params, headers)
            status, ctype, body = receiver.responder(self.path, params)
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    rec.server.daemon_threads = False
    thread = threading.Thread(target=rec.server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield rec
    rec.server.shutdown()
    thread.join()
    rec.server.server_close()


def make_config(receiver: Receiver, **overrides: Any) -> EmulatorConfig:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "webhook_url": receiver.url("/twilio/messages"),
        "sms_number": BOT_NUMBER,
        "whatsapp_number": "+14155238886",
        "step_delay": 0.01,
        "callback_timeout": 2.0,
        **overrides,
    }
    return EmulatorConfig(**values)


@pytest.fixture
def emulator(receiver: Receiver) -> Iterator[EmulatorServer]:
    with EmulatorServer(make_config(receiver)) as server:
        yield server


@pytest.fixture
def control(emulator: EmulatorServer) -> EmulatorControl:
    return EmulatorControl(emulator.url)


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[Client]:
    twilio = twilio_client(emulator.url, ACCOUNT_SID, AUTH_TOKEN)
    yield twilio
    twilio.http_client.session.close()


# -- Twilio's OpenAPI schema (3.0) checked with jsonschema ------------------------------------


def _nullable_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` is JSON Schema's `type: [T, "null"]`."""
    if isinstance(node, list):
        return [_nullable_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True and "type" in node:
        out["type"] = [node["type"], "null"]
    return out


_formats = jsonschema.FormatChecker(formats=())


def _rfc2822(value: object) -> bool:
    # Twilio writes GMT as +0000: "Thu, 24 Aug 2023 05:01:45 +0000".
    if not isinstance(value, str):
        return True  # formats constrain strings only; null is the type's business
    if not value.endswith(" +0000"):
        return False
    return parsedate_to_datetime(value).utcoffset() is not None


def _phone(value: object) -> bool:
    return not isinstance(value, str) or bool(re.match(r"^(whatsapp:)?\+[1-9]\d{1,14}$", value))


def _currency(value: object) -> bool:
    return not isinstance(value, str) or (len(value) == 3 and value.isalpha())


_formats.checks("date-time-rfc-2822", raises=(TypeError, ValueError))(_rfc2822)
_formats.checks("phone-number")(_phone)
_formats.checks("currency")(_currency)


def _validator(pointer: str) -> jsonschema.protocols.Validator:
    document = _nullable_to_jsonschema(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    schema = {"$ref": pointer, **{k: v for k, v in document.items() if not k.startswith("_")}}
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=_formats)


MESSAGE_SCHEMA = "#/components/schemas/api.v2010.account.message"
LIST_SCHEMA = "#/ListMessageResponse"


def validate_message(resource: dict[str, Any]) -> None:
    _validator(MESSAGE_SCHEMA).validate(resource)
    properties = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))["components"]["schemas"][
        "api.v2010.account.message"]["properties"]
    # Same fields as Twilio's resource: none missing, none invented.
    assert set(resource) == set(properties)


def validate_list(page: dict[str, Any]) -> None:
    _validator(LIST_SCHEMA).validate(page)
    for message in page["messages"]:
        validate_message(message)
