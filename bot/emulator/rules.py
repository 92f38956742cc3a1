"""Failure rules: make chosen sends fail the way Twilio fails them.

A rule names a Twilio error code, optionally a recipient and a channel, and how many matching
sends it spoils before it lets them through (`times`; None = every one). Codes fail at one of
two moments, as they do on Twilio:

- at create time (the REST call itself answers an error): 20429 → 429, 5xx → that status,
  21610 / 21211 / 21614 and other 2xxxx codes → 400;
- after acceptance (201, then status callbacks end in `undelivered` or `failed` with
  ErrorCode): 30003, 30006 and other 3xxxx codes → undelivered; 63016 and other 63xxx → failed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from .addresses import Channel, split_address
from .errors import ApiError

Stage = Literal["create", "delivery"]


def stage_of(code: int) -> Stage:
    return "delivery" if code >= 30000 else "create"


def create_error(code: int) -> ApiError:
    """The API error a create-time rule answers with."""
    if 500 <= code <= 599:
        return ApiError(20500, status=code)
    return ApiError(code)


def delivery_status(code: int) -> Literal["failed", "undelivered"]:
    # Channel-level refusals (63xxx, e.g. WhatsApp's 24 h window) never reach a carrier.
    return "failed" if 63000 <= code < 64000 else "undelivered"


class RuleError(ValueError):
    """A rule that cannot be understood."""


@dataclass
class Rule:
    code: int
    to: str | None = None
    times: int | None = None  # remaining failures; None = unlimited
    channel: Channel | None = None
    hits: int = field(default=0)

    @classmethod
    def from_json(cls, data: Any) -> Rule:
        if not isinstance(data, dict):
            raise RuleError("a rule is a JSON object")
        unknown = set(data) - {"code", "to", "times", "channel"}
        if unknown:
            raise RuleError(f"unknown rule fields: {sorted(unknown)}")
        code = data.get("code")
        if not isinstance(code, int) or isinstance(code, bool) or code <= 0:
            raise RuleError("code must be a positive integer")
        to = data.get("to")
        if to is not None and (not isinstance(to, str) or not to):
            raise RuleError("to must be a phone number")
        times = data.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise RuleError("times must be a positive integer")
        channel = data.get("channel")
        if channel not in (None, "sms", "whatsapp"):
            raise RuleError("channel must be sms or whatsapp")
        return cls.make(code, to=to, times=times, channel=channel)

    @classmethod
    def parse(cls, text: str) -> Rule:
        """`CODE[:TO][:TIMES]`, e.g. `30003`, `21610:+15551230001`, `20429::2`,
        `63016:whatsapp:+15551230001:1`."""
        code_text, _, rest = text.partition(":")
        if not code_text.isdigit():
            raise RuleError(f"{text!r}: CODE must be a number")
        to: str | None = rest or None
        times: int | None = None
        head, sep, tail = rest.rpartition(":")
        if sep and tail.isdigit():
            to, times = (head or None), int(tail)
        if to is not None and not split_address(to)[1].startswith("+"):
            raise RuleError(f"{text!r}: TO must be an E.164 number (CODE::TIMES for anyone)")
        if times is not None and times < 1:
            raise RuleError(f"{text!r}: TIMES must be at least 1")
        return cls.make(int(code_text), to=to, times=times)

    @classmethod
    def make(
        cls,
        code: int,
        *,
        to: str | None = None,
        times: int | None = None,
        channel: Channel | None = None,
    ) -> Rule:
        if to is not None and channel is None and to.lower().startswith("whatsapp:"):
            channel = "whatsapp"
        if channel is None and 63000 <= code < 64000:
            # WhatsApp-only errors: an SMS fallback to the same number must still get through.
            channel = "whatsapp"
        return cls(code=code, to=to, times=times, channel=channel)

    def matches(self, to: str) -> bool:
        channel, number = split_address(to)
        if self.channel is not None and self.channel != channel:
            return False
        return self.to is None or split_address(self.to)[1] == number

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "to": self.to,
            "times": self.times,
            "channel": self.channel,
            "stage": stage_of(self.code),
            "hits": self.hits,
        }


class RuleSet:
    """The active rules; `take` is atomic so concurrent sends consume `times` exactly."""

    def __init__(self, rules: list[Rule] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[Rule] = list(rules or [])

    def add(self, rule: Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def take(self, to: str) -> int | None:
        """The error code the next send to `to` must fail with, if any; uses up one `times`."""
        with self._lock:
            for rule in self._rules:
                if rule.times == 0 or not rule.matches(to):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                rule.hits += 1
                return rule.code
        return None
