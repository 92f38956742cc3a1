"""How many SMS segments a message costs, as the carrier will bill it.

A message is sent in GSM-7 when every character is in the GSM 03.38 basic table or its
extension table (extension characters take two septets: an escape plus the character).
Otherwise the whole message goes out as UCS-2, counted in UTF-16 code units, so one `á` or
one emoji shrinks a segment from 160 to 70 characters. A message that does not fit in one
segment is split, and each part loses room to the concatenation header (153 / 67).

Parts are filled the way handsets and Twilio fill them: an escape pair or a surrogate pair
is never split across two parts, so the count can be one higher than a plain division.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM_SINGLE = 160
GSM_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67

#: GSM 03.38 basic character set (the escape 0x1B itself is not a character).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table: each costs two septets.
GSM_EXTENDED = frozenset("\f^{}\\[~]|€")


@dataclass(frozen=True, slots=True)
class Measure:
    """A message's encoding, its length in that encoding's units, and its segment count."""

    encoding: Encoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def is_gsm(char: str) -> bool:
    return char in GSM_BASIC or char in GSM_EXTENDED


def encoding(text: str) -> Encoding:
    """`GSM-7` if every character can be sent in GSM-7, else `UCS-2`."""
    return "GSM-7" if all(is_gsm(c) for c in text) else "UCS-2"


def non_gsm_chars(text: str) -> list[str]:
    """The distinct characters that force `text` into UCS-2, in order of appearance."""
    return list(dict.fromkeys(c for c in text if not is_gsm(c)))


def _units(text: str, enc: Encoding) -> list[int]:
    """The cost of each character in units of `enc`."""
    if enc == "GSM-7":
        return [2 if c in GSM_EXTENDED else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def measure(text: str) -> Measure:
    enc = encoding(text)
    costs = _units(text, enc)
    total = sum(costs)
    single, multi = (GSM_SINGLE, GSM_MULTI) if enc == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    if total <= single:
        return Measure(enc, total, 1)  # an empty message still costs one SMS
    parts, room = 1, multi
    for cost in costs:
        if cost > room:  # a two-unit character never straddles two parts
            parts += 1
            room = multi
        room -= cost
    return Measure(enc, total, parts)


def segments(text: str) -> int:
    """How many SMS segments `text` is billed as."""
    return measure(text).segments
