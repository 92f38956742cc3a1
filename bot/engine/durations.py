"""Durations as coordinators write them: `30m`, `2h`, `1d`, `1d12h`, `90s`."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*([dhms])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[dhms]\s*)+$")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Parse a duration; raise ValueError with a plain-words message if it is malformed."""
    if not isinstance(text, str) or not _WHOLE.match(text.lower()):
        raise ValueError(f"`{text}` is not a duration; write it like 30m, 2h, 1d or 1d12h")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(text.lower()))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    out = []
    for unit, size in _UNITS.items():
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out) or "0s"
