"""Delivery decisions without I/O: what an error means, when to retry, which channel to use.

The send job (workers/send.py) and the status-callback path (bot/outbox.on_delivery_failure)
both ask here, so a code is treated the same wherever it shows up. Reasons stored with a
message are our own words: Twilio's error texts may quote the phone number.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import requests

from .config import Settings
from .ratelimit import DEFAULT_LIMITS, SenderLimit
from .templates import TemplateRegistry

#: A participant's last message opens WhatsApp's free-form window for this long.
WHATSAPP_WINDOW: Final = timedelta(hours=24)
#: A text withheld behind a template goes out with the reply to the participant's next
#: message for this long; after that it is stale (last week's check-in question).
WITHHELD_KEEP: Final = timedelta(days=7)
#: Sends of one message (the first one included) before a transient error becomes final.
MAX_ATTEMPTS: Final = 5
#: The longest a retry waits, whatever the attempt.
MAX_BACKOFF: Final = timedelta(hours=1)

OPTED_OUT_CODE: Final = 21610
WINDOW_CODE: Final = 63016


class Action(enum.Enum):
    RETRY = "retry"  # try again soon: the service or the connection hiccuped
    SLOW_RETRY = "slow_retry"  # try again in minutes: the handset or the queue is the problem
    OPTED_OUT = "opted_out"  # the recipient replied STOP to this number: never again
    WINDOW = "window"  # WhatsApp's 24 h window is closed: template or SMS instead
    FINAL = "final"  # retrying cannot help


#: Seconds before the first retry; each further attempt doubles it (with jitter).
BACKOFF_BASE: Final[Mapping[Action, float]] = {Action.RETRY: 5.0, Action.SLOW_RETRY: 60.0}

_CODES: Final[Mapping[int, tuple[Action, str]]] = {
    20429: (Action.RETRY, "too many requests"),
    20500: (Action.RETRY, "Twilio server error"),
    20503: (Action.RETRY, "Twilio unavailable"),
    21610: (Action.OPTED_OUT, "recipient opted out (STOP)"),
    21211: (Action.FINAL, "invalid phone number"),
    21614: (Action.FINAL, "not a mobile number"),
    21408: (Action.FINAL, "region not enabled"),
    21612: (Action.FINAL, "cannot route to this number"),
    21617: (Action.FINAL, "message too long"),
    20003: (Action.FINAL, "Twilio refused our credentials"),
    21611: (Action.SLOW_RETRY, "sender queue overflow"),
    30001: (Action.SLOW_RETRY, "sender queue overflow"),
    30003: (Action.SLOW_RETRY, "handset unreachable"),
    30005: (Action.FINAL, "unknown destination"),
    30006: (Action.FINAL, "landline or unreachable carrier"),
    30007: (Action.FINAL, "blocked by carrier filtering"),
    30008: (Action.SLOW_RETRY, "unknown delivery error"),
    63016: (Action.WINDOW, "outside the WhatsApp 24 h window"),
}


@dataclass(frozen=True, slots=True)
class Failure:
    action: Action
    code: int | None  # Twilio's error code; None for a transport error
    reason: str  # safe to store and log: no numbers, no message text
    #: The request may have reached Twilio (a read timeout): a resend may duplicate.
    maybe_sent: bool = False

    @property
    def text(self) -> str:
        return f"{self.code}: {self.reason}" if self.code else self.reason


def classify_code(code: int | None, http_status: int | None = None) -> Failure:
    """What a Twilio error code (from the REST answer or a status callback) means."""
    if code is not None and code in _CODES:
        action, reason = _CODES[code]
        return Failure(action, code, reason)
    if http_status is not None and (http_status >= 500 or http_status == 429):
        return Failure(Action.RETRY, code, f"HTTP {http_status} from Twilio")
    if code is not None and 63000 <= code < 64000:
        return Failure(Action.FINAL, code, "WhatsApp refused the message")
    if code is not None and 30000 <= code < 40000:
        # Carrier-side codes we do not know: unreachable for now is the likelier reading.
        return Failure(Action.SLOW_RETRY, code, "delivery error")
    if http_status is not None:
        return Failure(Action.FINAL, code, f"refused by Twilio (HTTP {http_status})")
    return Failure(Action.FINAL, code, "not delivered")


def classify_rest_error(status: int, code: int | None) -> Failure:
    """A TwilioRestException's HTTP status and code (its text is never stored)."""
    return classify_code(code, status)


def classify_transport_error(exc: BaseException) -> Failure:
    """A requests exception: retry, and say whether Twilio may have the message already."""
    if isinstance(exc, requests.ConnectTimeout):
        return Failure(Action.RETRY, None, "could not connect to Twilio (timeout)")
    if isinstance(exc, requests.ReadTimeout):
        return Failure(Action.RETRY, None, "no answer from Twilio in time", maybe_sent=True)
    if isinstance(exc, requests.ConnectionError):
        # A refused or failed connect never carried the request; a dropped one may have.
        refused = "NewConnectionError" in repr(exc) or "Connection refused" in repr(exc)
        return Failure(Action.RETRY, None,
                       "could not connect to Twilio" if refused else "connection to Twilio lost",
                       maybe_sent=not refused)
    return Failure(Action.RETRY, None, f"transport error ({type(exc).__name__})",
                   maybe_sent=True)


def backoff(attempt: int, action: Action, rng: random.Random | None = None) -> timedelta:
    """The wait before retry number `attempt` (1 = after the first send): exponential, with
    "equal jitter" so retries of many messages failing together spread out but never come
    back sooner than half the nominal wait."""
    base = BACKOFF_BASE.get(action, BACKOFF_BASE[Action.RETRY])
    nominal = min(base * 2 ** max(attempt - 1, 0), MAX_BACKOFF.total_seconds())
    jitter = (rng or random).uniform(0, nominal / 2)
    return timedelta(seconds=nominal / 2 + jitter)


def retryable(failure: Failure, attempts: int) -> bool:
    return failure.action in (Action.RETRY, Action.SLOW_RETRY) and attempts < MAX_ATTEMPTS


# ---- channels and templates -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recipient:
    """What the send path knows about who a message is for."""

    phone: str | None  # E.164, no channel prefix
    language: str
    sms_consent: bool = True
    last_inbound_at: datetime | None = None
    whatsapp_window_closed: bool = False
    #: Staff (navigators) have no window we track: try free-form, fall back on 63016.
    window_known: bool = True


@dataclass(frozen=True, slots=True)
class Plan:
    channel: str  # sms | whatsapp
    to: str  # as Twilio wants it: "+1..." or "whatsapp:+1..."
    body: str | None
    content_sid: str | None = None
    content_variables: str | None = None
    #: Why the channel or form differs from what was asked: "template" | "sms_fallback".
    fallback: str | None = None
    #: A template that does not show `body`: the text waits for the participant's reply.
    withheld: bool = False


@dataclass(frozen=True, slots=True)
class Undeliverable:
    reason: str


def window_open(r: Recipient, now: datetime) -> bool:
    if not r.window_known:
        return not r.whatsapp_window_closed
    if r.whatsapp_window_closed or r.last_inbound_at is None:
        return False
    return now - r.last_inbound_at < WHATSAPP_WINDOW


def plan(channel: str, body: str, r: Recipient, *, purpose: str | None, now: datetime,
         templates: TemplateRegistry, template_values: Mapping[str, str],
         whatsapp_ready: bool = True, urgent: bool = False) -> Plan | Undeliverable:
    """How to deliver `body` on `channel` to `r` right now.

    WhatsApp inside the window: free-form. Outside it: the approved template for the
    purpose in the participant's language; without one, SMS if the participant agreed to
    SMS, else nothing (the coordinator is told). An `urgent` text (the safety message) goes
    by SMS rather than as a template that would not show it, when the participant agreed to
    SMS: it must be read now, not after they reply. `whatsapp_ready` False: no WhatsApp
    sender is configured.
    """
    if not r.phone:
        return Undeliverable("no phone number")
    if channel != "whatsapp":
        return Plan("sms", r.phone, body)
    if whatsapp_ready and window_open(r, now):
        return Plan("whatsapp", f"whatsapp:{r.phone}", body)
    template = templates.lookup(purpose, r.language) if whatsapp_ready else None
    if template is not None and urgent and not template.carries_body and r.sms_consent:
        template = None
    if template is not None:
        values = {**template_values, "body": body}
        return Plan("whatsapp", f"whatsapp:{r.phone}", None, template.content_sid,
                    template.render_variables(values), fallback="template",
                    withheld=not template.carries_body)
    if r.sms_consent:
        return Plan("sms", r.phone, body, fallback="sms_fallback")
    why = ("no WhatsApp sender configured" if not whatsapp_ready else
           f"WhatsApp window closed, no template for {purpose or 'default'}/{r.language}")
    return Undeliverable(f"{why}, and no SMS consent")


def withheld_expiry(*, withheld_at: datetime, created_at: datetime, now: datetime,
                    template_failed: bool = False, conversation_ended_at: datetime | None = None,
                    opted_out_at: datetime | None = None) -> str | None:
    """Why a withheld text is no longer worth sending when the participant writes (its
    reason, safe to store), or None: deliver it."""
    if template_failed:
        return "template not delivered"  # the retry of the row carries the text
    if now - withheld_at >= WITHHELD_KEEP:
        return f"older than {WITHHELD_KEEP.days} days"
    if opted_out_at is not None and opted_out_at >= withheld_at:
        return "opted out since"
    if conversation_ended_at is not None and conversation_ended_at > created_at:
        # Ended after the text was written, without the participant: given up on, or
        # replaced by a newer conversation. Its question can no longer be answered.
        return "conversation ended"
    return None


# ---- senders and rates ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sender:
    from_: str | None  # "+1..." / "whatsapp:+1..."; None with a Messaging Service
    messaging_service_sid: str | None
    kind: str  # rate class: long_code | toll_free | short_code | whatsapp
    key: str  # the rate limiter's key: one budget per sending number

    @property
    def shown(self) -> str:
        return self.from_ or self.messaging_service_sid or "-"


def sender_for(settings: Settings, channel: str) -> Sender | None:
    """Our sending number for `channel`, or None when that channel is not configured."""
    service = settings.messaging_service_sid
    if channel == "whatsapp":
        if settings.whatsapp_from:
            number = settings.whatsapp_from.removeprefix("whatsapp:")
            return Sender(f"whatsapp:{number}", None, "whatsapp", f"whatsapp:{number}")
        if service:
            return Sender(None, service, "whatsapp", f"whatsapp:{service}")
        return None
    if service:
        return Sender(None, service, settings.sms_sender_kind, service)
    if settings.sms_from:
        return Sender(settings.sms_from, None, settings.sms_sender_kind, settings.sms_from)
    return None


class RateConfigError(ValueError):
    pass


def rate_limits(settings: Settings) -> dict[str, SenderLimit] | None:
    """The limits the workers apply: Twilio's per sender kind, the `SEND_RATE_LIMIT`
    override for every kind ("100" or "100:20" for a burst of 20), or None for "off"."""
    if settings.sms_sender_kind not in DEFAULT_LIMITS or settings.sms_sender_kind == "whatsapp":
        raise RateConfigError(f"SMS_SENDER_KIND `{settings.sms_sender_kind}` is not one of "
                              "long_code, toll_free, short_code")
    raw = (settings.send_rate_limit or "").strip().lower()
    if not raw:
        return dict(DEFAULT_LIMITS)
    if raw in ("off", "none", "0"):
        return None
    rate_text, _, burst_text = raw.partition(":")
    try:
        rate = float(rate_text.removesuffix("/s"))
        burst = int(burst_text) if burst_text else max(1, round(rate / 5))
        return {kind: SenderLimit(rate, burst, per_message=limit.per_message)
                for kind, limit in DEFAULT_LIMITS.items()}
    except ValueError as exc:
        raise RateConfigError(f"SEND_RATE_LIMIT `{settings.send_rate_limit}`: write units a "
                              f"second like 100 or 100:20 (with a burst), or off ({exc})") from None
