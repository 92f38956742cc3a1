"""The languages the bot speaks, as lowercase BCP-47 primary tags."""

from __future__ import annotations

SUPPORTED: tuple[str, ...] = ("en", "es", "fr", "pt", "sw", "ar", "zh", "vi", "ht")

#: Languages written right to left: stored and sent intact, but never reordered.
RTL: frozenset[str] = frozenset({"ar"})


def primary(tag: str) -> str:
    """`es-MX`, `es_MX` and `ES` all give `es`; an empty tag gives an empty string."""
    return tag.replace("_", "-").split("-")[0].strip().lower()
