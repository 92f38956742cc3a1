"""Twilio's side of the webhook: signatures, form parsing and TwiML. No database here.

Signatures are checked against the configured public base URL, not `request.url`: behind a
TLS-terminating proxy Flask sees `http://` and an internal host, and Twilio signed what *it*
requested. Only the form body is signed (`request.form`), never `request.values`.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from twilio.request_validator import (
    SIGNATURE_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

MAX_BODY_CHARS = 1600
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_LOOSE_SID = re.compile(r"^[A-Za-z0-9_-]{2,64}$")
# XML 1.0 cannot carry C0 controls other than tab/newline/return, nor lone surrogates.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'

__all__ = ["EMPTY_TWIML", "SIGNATURE_HEADER", "Inbound", "Malformed", "StatusUpdate",
           "parse_inbound", "parse_status", "signature_ok", "twiml"]


class Malformed(ValueError):
    """The request is not a message Twilio would send; `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Inbound:
    sid: str
    phone: str  # E.164 without the channel prefix
    channel: str  # sms | whatsapp
    to: str | None
    body: str
    opt_out_type: str | None  # STOP | START | HELP when Twilio Advanced Opt-Out answered
    num_media: int


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    sid: str
    status: str
    error_code: int | None


@functools.lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


def signature_ok(auth_token: str, url: str, form: Mapping[str, Any], signature: str | None,
                 settings_header: str | None = None) -> bool:
    """True when `signature` is Twilio's HMAC of `url` and the form parameters."""
    if not signature or not auth_token:
        return False
    algorithm = get_signature_algorithm(settings_header)
    validator = _validator(auth_token)
    try:
        # The URL exactly as configured matches almost always: one HMAC, compared in
        # constant time. Otherwise twilio's own check also tries it with/without the port.
        expected = validator.compute_signature(url, form, algorithm)
    except ValueError:  # an algorithm twilio does not know
        return False
    if hmac.compare_digest(expected.encode(), signature.encode()):
        return True
    return bool(validator.validate(url, form, signature, algorithm))


def signed_url(public_base_url: str, path: str, query_string: bytes | str = b"") -> str:
    """The URL Twilio requested, from PUBLIC_BASE_URL: the base plus the path (and query,
    which is signed). The webhook uses the request's own URL when no base is set."""
    query = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    url = public_base_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def _one(form: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = form.get(name)
        if value is not None:
            return str(value)
    return None


def parse_address(raw: str | None) -> tuple[str, str]:
    """`+15551234567` or `whatsapp:+15551234567` -> (E.164, channel), or Malformed."""
    if not raw:
        raise Malformed("missing From")
    value = raw.strip()
    channel = "sms"
    if value.lower().startswith("whatsapp:"):
        channel, value = "whatsapp", value[len("whatsapp:"):]
    if not _E164.match(value):
        raise Malformed("From is not an E.164 number")
    return value, channel


def clean_text(text: str) -> str:
    """Message text as stored: NUL removed (PostgreSQL refuses it in text), else untouched."""
    return text.replace("\x00", "")


def parse_inbound(form: Mapping[str, Any]) -> Inbound:
    """The fields we use from an inbound message webhook. Unknown parameters are ignored."""
    sid = _one(form, "MessageSid", "SmsMessageSid", "SmsSid")
    if not sid or not _LOOSE_SID.match(sid):
        raise Malformed("missing or invalid MessageSid")
    phone, channel = parse_address(_one(form, "From"))
    body = _one(form, "Body") or ""
    if len(body) > MAX_BODY_CHARS:
        raise Malformed(f"Body longer than {MAX_BODY_CHARS} characters")
    if not body.strip():
        # A WhatsApp quick-reply tap carries the button's text separately.
        body = _one(form, "ButtonText") or body
        if len(body) > MAX_BODY_CHARS:
            raise Malformed(f"ButtonText longer than {MAX_BODY_CHARS} characters")
    opt_out = (_one(form, "OptOutType") or "").strip().upper() or None
    try:
        num_media = max(int(_one(form, "NumMedia") or 0), 0)
    except ValueError:
        num_media = 0
    return Inbound(sid=sid, phone=phone, channel=channel, to=_one(form, "To"),
                   body=clean_text(body), opt_out_type=opt_out, num_media=num_media)


def parse_status(form: Mapping[str, Any]) -> StatusUpdate:
    sid = _one(form, "MessageSid", "SmsSid")
    if not sid or not _LOOSE_SID.match(sid):
        raise Malformed("missing or invalid MessageSid")
    status = (_one(form, "MessageStatus", "SmsStatus") or "").strip().lower()
    if not status or not status.isalpha() or len(status) > 16:
        raise Malformed("missing or invalid MessageStatus")
    raw_code = (_one(form, "ErrorCode") or "").strip()
    error_code: int | None = None
    if raw_code:
        if not raw_code.isdigit() or len(raw_code) > 9:
            raise Malformed("invalid ErrorCode")
        error_code = int(raw_code)
    return StatusUpdate(sid=sid, status=status, error_code=error_code)


def twiml(messages: Iterable[str]) -> str:
    """A TwiML reply with one <Message> per text (an empty <Response/> for none)."""
    response = MessagingResponse()
    for text in messages:
        response.message(_XML_ILLEGAL.sub("", text))
    return str(response)


def is_twilio_sid(value: str) -> bool:
    return bool(_SID.match(value))
