"""Structured logs: one JSON object per line, with the request id, never health data.

Call sites log an *event name* plus a few safe fields (masked phone, participant code,
MessageSid, counts). Message bodies, full phone numbers, auth tokens and signatures are
never passed in. `ScrubFilter` is the safety net for mistakes: it masks anything that looks
like a phone number or a secret before a line leaves the process.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from typing import IO, Any

LOGGER_NAME = "bot"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None)

# A run of 8+ digits (spaces, dots, dashes and brackets allowed between them) that is not part
# of a longer word: phone numbers, but not the hex inside a MessageSid such as `SM0123...`.
_PHONE_RE = re.compile(r"(?<![\w+])\+?\d(?:[\d ().-]{6,18})\d(?![\w])")
# Twilio auth tokens and similar: 32+ hex characters standing alone.
_HEX_SECRET_RE = re.compile(r"(?<![\w])[0-9a-fA-F]{32,}(?![\w])")
# Base64 HMAC digests (X-Twilio-Signature is 28 characters ending in `=`).
_SIGNATURE_RE = re.compile(r"(?<![\w+/])[A-Za-z0-9+/]{26,86}={1,2}")
_KEYED_SECRET_RE = re.compile(
    r"(?i)\b(auth[_-]?token|token|signature|password|secret|authorization)\b(\s*[=:]\s*)(\S+)")
# SQLAlchemy appends bound parameters (bodies, numbers) to its error messages.
_SQL_PARAMS_RE = re.compile(r"\[parameters: [^\n]*")


def scrub(text: str) -> str:
    """Mask what looks like a phone number, token or signature in free text."""
    text = _SQL_PARAMS_RE.sub("[parameters hidden]", text)
    text = _KEYED_SECRET_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}[hidden]", text)
    text = _SIGNATURE_RE.sub("[hidden]", text)
    text = _HEX_SECRET_RE.sub("[hidden]", text)
    return _PHONE_RE.sub(lambda m: _mask_digits(m.group(0)), text)


def _mask_digits(raw: str) -> str:
    digits = re.sub(r"[^\d+]", "", raw)
    return digits[:3] + "*" * max(len(digits) - 5, 0) + digits[-2:]


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return value


class ScrubFilter(logging.Filter):
    """Rewrites each record in place so no handler after it sees raw numbers or secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line  # noqa: BLE001
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = _scrub_value(fields)
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks may quote bound parameters (bodies, numbers): scrub the whole text.
            record.exc_text = scrub(_PLAIN.formatException(record.exc_info))
            record.exc_info = None
        return True


_PLAIN = logging.Formatter()


class JsonFormatter(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            data["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                data.setdefault(key, value)
        if record.exc_text:
            data["error"] = record.exc_text
        elif record.exc_info and record.exc_info[1] is not None:
            data["error"] = scrub(f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}")
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send the `bot` loggers to `stream` (stderr) as scrubbed JSON lines; idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if getattr(h, "_trialbot", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._trialbot = True  # type: ignore[attr-defined]
    handler.addFilter(ScrubFilter())
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def is_configured() -> bool:
    return any(getattr(h, "_trialbot", False) for h in logging.getLogger(LOGGER_NAME).handlers)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `name` with safe structured fields (callers pass masked numbers only).

    `level` is the logging level, so a field must not be called that: a small number meant
    as a field would make the line vanish. Such a call is logged at INFO with the number
    kept as `level_field` rather than dropped (or failing the request it reports on)."""
    if level < logging.DEBUG:
        fields = {"level_field": level, **fields}
        level = logging.INFO
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})


def new_request_id(incoming: str | None) -> str:
    """Reuse the caller's X-Request-Id when it is a plain token; otherwise make one."""
    if incoming and _REQUEST_ID_RE.match(incoming):
        return incoming
    return secrets.token_hex(8)
