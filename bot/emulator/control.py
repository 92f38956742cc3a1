"""A small client for the emulator's `/_emulator/*` endpoints (used by `bot chat` and tests)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from . import transport


class EmulatorError(RuntimeError):
    """The emulator answered with an error or could not be reached."""


class EmulatorControl:
    def __init__(self, base_url: str, timeout: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        # Above Twilio's 15 s webhook limit, so a slow bot shows as a webhook error, not ours.
        self.timeout = timeout

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        url = self.base_url + path
        try:
            if payload is not None:
                result = transport.post_json(url, payload, timeout=self.timeout)
            else:
                result = transport.request(method, url, timeout=self.timeout)
        except OSError as err:
            raise EmulatorError(f"cannot reach the emulator at {self.base_url}: {err}") from err
        if result.status >= 400:
            raise EmulatorError(f"{method} {path}: HTTP {result.status} {result.body[:200]!r}")
        return result.json()

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/_emulator/health")
        return data

    def messages(
        self, to: str | None = None, since: int = 0, from_: str | None = None
    ) -> list[dict[str, Any]]:
        query = {k: v for k, v in (("to", to), ("from", from_)) if v}
        query["since"] = str(since)
        data: list[dict[str, Any]] = self._call(
            "GET", "/_emulator/messages?" + urllib.parse.urlencode(query)
        )
        return data

    def reset(self) -> None:
        self._call("DELETE", "/_emulator/messages")

    def add_rule(
        self,
        code: int,
        to: str | None = None,
        times: int | None = None,
        channel: str | None = None,
    ) -> list[dict[str, Any]]:
        rule = {k: v for k, v in (("to", to), ("times", times), ("channel", channel)) if v}
        data: list[dict[str, Any]] = self._call("POST", "/_emulator/rules", {"code": code, **rule})
        return data

    def rules(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._call("GET", "/_emulator/rules")
        return data

    def clear_rules(self) -> None:
        self._call("DELETE", "/_emulator/rules")

    def inbound(
        self,
        from_: str,
        body: str,
        channel: str | None = None,
        to: str | None = None,
        **extra: str,
    ) -> dict[str, Any]:
        """`channel` None: whatsapp for a `whatsapp:+...` sender, else sms."""
        payload = {"from": from_, "body": body, **extra}
        if channel:
            payload["channel"] = channel
        if to:
            payload["to"] = to
        data: dict[str, Any] = self._call("POST", "/_emulator/inbound", payload)
        return data
