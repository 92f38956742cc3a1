"""Swahili replies as participants really send them."""

from __future__ import annotations

import pytest

from bot.engine.understand import (
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)

from .options import severity, symptoms

LANG = "sw"

YES_NO = [
    ("ndiyo", True),
    ("Ndiyo", True),
    ("NDIYO", True),
    ("ndio", True),
    ("ndiooo", True),
    ("ndiyo nimekunywa", True),
    ("nimekunywa", True),
    ("nimeshakunywa dawa", True),
    ("sawa", True),
    ("eeh", True),
    ("naam", True),
    ("tayari", True),
    ("ndiyo asante 👍", True),
    ("yes", True),
    ("ok", True),
    ("hapana", False),
    ("HAPANA", False),
    ("hapanaa", False),
    ("la", False),
    ("La.", False),
    ("bado", False),
    ("hapana bado", False),
    ("sijakunywa", False),
    ("bado sijakunywa", False),
    ("nimesahau", False),
    ("hapana, nimesahau", False),
    ("hapana asante", False),
    ("no", False),
    ("👎", False),
]

YES_NO_UNCLEAR = [
    "sijui",
    "labda",
    "sina uhakika",
    "sikumbuki",
    "ndiyo hapana",
    "bado nina maumivu",
    "nina maumivu ya kichwa",
    "nina tatizo la tumbo",  # "la" is "of" here, not "no"
    "",
]


@pytest.mark.parametrize(("text", "expected"), YES_NO)
def test_yes_no(text: str, expected: bool) -> None:
    assert parse_yes_no(text, LANG) is expected


@pytest.mark.parametrize("text", YES_NO_UNCLEAR)
def test_yes_no_unclear(text: str) -> None:
    assert parse_yes_no(text, LANG) is None


NUMBERS = [
    ("7", 7),
    ("saba", 7),
    ("SABA", 7),
    ("7 kati ya 10", 7),
    ("saba kati ya kumi", 7),
    ("7/10", 7),
    ("sifuri", 0),
    ("kumi", 10),
    ("moja", 1),
    ("mbili", 2),
    ("tatu", 3),
    ("nne", 4),
    ("tano", 5),
    ("sita", 6),
    ("nane", 8),
    ("tisa", 9),
    ("mara mbili", 2),
]

NUMBERS_UNCLEAR = ["5 au 6", "tano au sita", "sana", "", "kidogo"]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text: str, expected: int) -> None:
    assert parse_number(text, LANG, 0, 10) == expected


@pytest.mark.parametrize("text", NUMBERS_UNCLEAR)
def test_number_unclear(text: str) -> None:
    assert parse_number(text, LANG, 0, 10) is None


def test_number_words_beyond_ten() -> None:
    assert parse_number("kumi na moja", LANG) == 11
    assert parse_number("kumi na tisa", LANG) == 19
    assert parse_number("ishirini", LANG) == 20
    assert parse_number("ishirini na tano", LANG) == 25
    assert parse_number("mia moja", LANG) == 100


SEVERITY = severity(
    ("Hakuna",),
    ("Kidogo", "Wastani mdogo"),
    ("Wastani",),
    ("Makali", "Kali"),
    ("Makali sana", "Kali sana"),
)

CHOICES = [
    ("2", "mild"),
    ("mbili", "mild"),
    ("b", "mild"),
    ("kidogo", "mild"),
    ("wastani", "moderate"),
    ("kali sana", "very_severe"),
    ("ni kali sana leo", "very_severe"),
    ("kali", "severe"),
    ("hakuna", "none"),
    ("chaguo 3", "moderate"),
    ("wastan", "moderate"),
]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice(text: str, expected: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) == expected


def test_choice_unclear() -> None:
    assert parse_choice("kidogo au wastani", LANG, SEVERITY) is None
    assert parse_choice("saba", LANG, SEVERITY) is None


SYMPTOMS = symptoms(
    ("Kichefuchefu",),
    ("Uchovu",),
    ("Maumivu ya kichwa",),
    ("Kizunguzungu",),
    ("Hakuna",),
)

MULTI = [
    ("1 na 3", ["nausea", "headache"]),
    ("1, 3", ["nausea", "headache"]),
    ("a na c", ["nausea", "headache"]),
    ("kichefuchefu na uchovu", ["nausea", "fatigue"]),
    ("nina kizunguzungu na maumivu ya kichwa", ["headache", "dizziness"]),
    ("hakuna", ["none"]),
]


@pytest.mark.parametrize(("text", "expected"), MULTI)
def test_multi_choice(text: str, expected: list[str]) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) == expected
