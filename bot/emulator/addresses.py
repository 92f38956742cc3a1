"""Phone numbers and channel addresses (`+1555...`, `whatsapp:+1555...`)."""

from __future__ import annotations

import re
from typing import Literal

Channel = Literal["sms", "whatsapp"]

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
WHATSAPP_PREFIX = "whatsapp:"


def split_address(address: str) -> tuple[Channel, str]:
    """(`whatsapp`, `+1555...`) for `whatsapp:+1555...`; (`sms`, address) otherwise."""
    if address.lower().startswith(WHATSAPP_PREFIX):
        return "whatsapp", address[len(WHATSAPP_PREFIX) :]
    return "sms", address


def with_channel(channel: Channel, number: str) -> str:
    return f"{WHATSAPP_PREFIX}{number}" if channel == "whatsapp" else number


def is_e164(number: str) -> bool:
    return bool(E164.match(number))


def same_number(a: str, b: str) -> bool:
    """True when two addresses reach the same phone, on any channel."""
    return split_address(a)[1] == split_address(b)[1]


def mask(address: str | None) -> str:
    """A number fit for logs: channel, country-code-ish prefix and the last two digits."""
    if not address:
        return "-"
    channel, number = split_address(address)
    shown = number[:2] + "*" * max(len(number) - 4, 1) + number[-2:] if len(number) > 4 else "***"
    return with_channel(channel, shown)
