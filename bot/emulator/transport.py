"""Plain HTTP calls for the emulator and its tools (stdlib only; no session state to leak)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from twilio.request_validator import RequestValidator


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Twilio does not follow redirects on webhooks; neither do we (and POSTs must stay POSTs).
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def request(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> HttpResult:
    """One HTTP exchange. Any HTTP status is a result; only transport failures raise (OSError)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    # Scheme checked above, so S310's file:/custom-scheme concern does not apply.
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)  # noqa: S310
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return HttpResult(resp.status, resp.read(), _lower(resp.headers.items()))
    except urllib.error.HTTPError as err:
        with err:  # an HTTPError holds the open response; close it
            return HttpResult(err.code, err.read(), _lower(err.headers.items()))


def _lower(items: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


def post_json(url: str, payload: Any, timeout: float = 10.0) -> HttpResult:
    return request(
        "POST",
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        timeout=timeout,
    )


def post_signed_form(
    url: str,
    params: dict[str, str],
    auth_token: str,
    *,
    timeout: float = 15.0,
    extra_headers: dict[str, str] | None = None,
) -> HttpResult:
    """POST a form the way Twilio does: signed with X-Twilio-Signature for this exact URL."""
    signature = RequestValidator(auth_token).compute_signature(url, params)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
        "Accept": "*/*",
        **(extra_headers or {}),
    }
    body = urllib.parse.urlencode(params).encode("utf-8")
    return request("POST", url, data=body, headers=headers, timeout=timeout)
