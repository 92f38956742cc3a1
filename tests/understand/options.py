"""Shared options for the reply-understanding corpora."""

from __future__ import annotations

from bot.engine.understand.types import Choice


def severity(*extra: tuple[str, ...]) -> tuple[Choice, ...]:
    """A 5-point severity question; ``extra`` adds translated labels per option."""
    base = [
        ("none", ("None",)),
        ("mild", ("Mild",)),
        ("moderate", ("Moderate",)),
        ("severe", ("Severe",)),
        ("very_severe", ("Very severe",)),
    ]
    return tuple(
        Choice(value, labels + (extra[i] if i < len(extra) else ()))
        for i, (value, labels) in enumerate(base)
    )


def symptoms(*extra: tuple[str, ...]) -> tuple[Choice, ...]:
    """A multi-choice symptom question; ``extra`` adds translated labels per option."""
    base = [
        ("nausea", ("Nausea",)),
        ("fatigue", ("Fatigue",)),
        ("headache", ("Headache",)),
        ("dizziness", ("Dizziness",)),
        ("none", ("None",)),
    ]
    return tuple(
        Choice(value, labels + (extra[i] if i < len(extra) else ()))
        for i, (value, labels) in enumerate(base)
    )
