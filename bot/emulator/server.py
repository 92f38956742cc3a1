"""The emulator's HTTP face: Twilio's Messages REST API plus `/_emulator/*` controls.

    with EmulatorServer(EmulatorConfig(account_sid=..., auth_token=..., webhook_url=...)) as emu:
        client = twilio_client(emu.url, account_sid, auth_token)
        ...

Routes:
    POST   /2010-04-01/Accounts/{AccountSid}/Messages.json          create (Basic auth)
    GET    /2010-04-01/Accounts/{AccountSid}/Messages.json          list (To, From, PageSize, Page)
    GET    /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json    fetch
    GET    /_emulator/health
    GET    /_emulator/messages?to=&from=&since=                     records with their index
    DELETE /_emulator/messages                                      forget all messages
    GET|POST|DELETE /_emulator/rules                                failure rules
    POST   /_emulator/inbound  {"from", "body", "channel", "to"}    a participant texts the bot
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .core import Emulator, EmulatorConfig
from .errors import ApiError
from .rules import Rule, RuleError

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024
_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_MESSAGE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$")


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads are joined by server_close(): a clean stop in tests.
    daemon_threads = False
    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so shutdown never waits on an idle keep-alive.
    protocol_version = "HTTP/1.0"
    server_version = "TwilioEmulator/1.0"
    sys_version = ""

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    # Request lines carry phone numbers in query strings: keep them out of INFO logs.
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        try:
            if parts.path.startswith("/_emulator/"):
                self._control(method, parts.path, query)
            else:
                self._api(method, parts.path, query)
        except ApiError as err:
            self._json(err.status, err.payload(), auth_challenge=err.code == 20003)
        except Exception:
            log.exception("emulator request failed")
            self._json(500, ApiError(20500).payload())

    # -- the REST API ----------------------------------------------------------------------

    def _api(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        many, one = _MESSAGES.match(path), _MESSAGE.match(path)
        if not many and not one:
            raise ApiError(20404, message=f"The requested resource {path} was not found")
        self.emulator.authenticate(*self._basic_auth())
        match = many or one
        assert match is not None
        self.emulator.check_account(match["account"])
        if many and method == "POST":
            self._json(201, self.emulator.create_message(self._form()))
        elif many and method == "GET":
            self._json(200, self.emulator.list_messages(query))
        elif one and method == "GET":
            self._json(200, self.emulator.fetch_message(one["sid"]))
        else:
            raise ApiError(20004)

    def _basic_auth(self) -> tuple[str | None, str | None]:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return None, None
        try:
            decoded = base64.b64decode(token, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        username, sep, password = decoded.partition(":")
        return (username, password) if sep else (None, None)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            raise ApiError(20001, status=413, message="Request too large")
        return self.rfile.read(length) if length > 0 else b""

    def _form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self._body().decode("utf-8"), keep_blank_values=True)

    # -- test and inspection controls ------------------------------------------------------

    def _control(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        emulator = self.emulator
        route = (method, path.rstrip("/"))
        if route == ("GET", "/_emulator/health"):
            self._json(200, {"status": "ok", "messages": len(emulator.store),
                             "rejected": emulator.rejected})
        elif route == ("GET", "/_emulator/messages"):
            try:
                since = int(_first(query, "since") or 0)
            except ValueError:
                self._json(400, {"error": "since must be an integer"})
                return
            records = emulator.store.query(
                to=_first(query, "to"), from_=_first(query, "from"), since=since
            )
            self._json(200, records)
        elif route == ("DELETE", "/_emulator/messages"):
            emulator.reset()
            self._json(200, {"status": "reset"})
        elif route == ("GET", "/_emulator/rules"):
            self._json(200, emulator.rules.to_json())
        elif route == ("POST", "/_emulator/rules"):
            try:
                data = json.loads(self._body() or b"null")
                for item in data if isinstance(data, list) else [data]:
                    emulator.rules.add(Rule.from_json(item))
            except (ValueError, RuleError) as err:
                self._json(400, {"error": str(err)})
                return
            self._json(201, emulator.rules.to_json())
        elif route == ("DELETE", "/_emulator/rules"):
            emulator.rules.clear()
            self._json(200, [])
        elif route == ("POST", "/_emulator/inbound"):
            try:
                result = emulator.inbound(json.loads(self._body() or b"null"))
            except ValueError as err:
                self._json(400, {"error": str(err)})
                return
            self._json(200, result)
        else:
            self._json(404, {"error": f"no route {method} {path}"})

    def _json(self, status: int, payload: Any, *, auth_challenge: bool = False) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if auth_challenge:
            self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        self.end_headers()
        self.wfile.write(data)


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


class EmulatorServer:
    """The emulator on a port (0 = any free one), served from a background thread by `start`
    or in the foreground by `serve_forever`."""

    def __init__(self, config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = Emulator(config)
        self._httpd = _Server((host, port), _Handler)
        self._httpd.emulator = self.emulator
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
            name="twilio-emulator", daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self.close()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._httpd.server_close()
        self.emulator.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
