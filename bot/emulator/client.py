"""The real `twilio` client, pointed at the emulator (or at Twilio when no base URL is set).

    client = twilio_client("http://127.0.0.1:8010", account_sid, auth_token)
    client.messages.create(to="+15551230001", from_="+15005550006", body="Hi")

Every `https://api.twilio.com` URL the client builds — including page links it follows — is
rewritten to the base URL, so the client's own serialisation, auth and error mapping
(`TwilioRestException.code`) are exercised unchanged. Setting `client.api.base_url` would work
for the Messages API too, but the rewrite also covers absolute `next_page_url`s and regional
hosts (`api.dublin.ie1.twilio.com`).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bot.config import Settings


class EmulatorHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no types
    """A TwilioHttpClient that sends requests for api(.edge.region).twilio.com elsewhere."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._target = parts

    def rewrite(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if not (host == "api.twilio.com" or (host.startswith("api.") and
                                             host.endswith(".twilio.com"))):
            return url
        path = self._target.path.rstrip("/") + parts.path
        return urllib.parse.urlunsplit(
            (self._target.scheme, self._target.netloc, path, parts.query, parts.fragment)
        )

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def twilio_client(
    base_url: str | None,
    account_sid: str,
    auth_token: str,
    *,
    api_key: str | None = None,
    api_secret: str | None = None,
    timeout: float | None = 10.0,
) -> Client:
    """A `twilio.rest.Client` for `account_sid`, talking to `base_url` (None = real Twilio).

    With `api_key`/`api_secret` the client authenticates as that API key, as production
    deployments usually do; the emulator accepts keys given to it with `--api-key SID:SECRET`.
    """
    http_client = (
        EmulatorHttpClient(base_url, timeout=timeout)
        if base_url
        else TwilioHttpClient(timeout=timeout)
    )
    if api_key:
        return Client(api_key, api_secret, account_sid, http_client=http_client)
    return Client(account_sid, auth_token, http_client=http_client)


def client_from_settings(settings: Settings) -> Client:
    """The client the bot should use: the emulator when `TWILIO_API_BASE_URL` is set."""
    return twilio_client(
        settings.twilio_api_base_url, settings.twilio_account_sid, settings.twilio_auth_token
    )
