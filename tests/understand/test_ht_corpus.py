"""Haitian Creole replies as participants really send them (often without accents)."""

from __future__ import annotations

import pytest

from bot.engine.understand import (
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)

from .options import severity, symptoms

LANG = "ht"

YES_NO = [
    ("wi", True),
    ("Wi", True),
    ("WI", True),
    ("wiii", True),
    ("wi wi", True),
    ("wi mwen pran l", True),
    ("m pran l", True),
    ("mwen pran li deja", True),
    ("dakò", True),
    ("dako", True),
    ("oke", True),
    ("wi mèsi 👍", True),
    ("pa gen pwoblèm", True),
    ("yes", True),
    ("non", False),
    ("NON", False),
    ("nonn", False),
    ("poko", False),
    ("pa ankò", False),
    ("pa anko", False),
    ("m pa pran l", False),
    ("mwen pa pran li", False),
    ("non, m bliye", False),
    ("m bliye", False),
    ("non mèsi", False),
    ("pa janm", False),
    ("no", False),
    ("👎", False),
]

YES_NO_UNCLEAR = [
    "m pa konnen",
    "mwen pa konnen",
    "petèt",
    "petet",
    "m pa sonje",
    "wi non",
    "ni wi ni non",
    "tèt mwen fè m mal",
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
    ("sèt", 7),
    ("set", 7),
    ("SÈT", 7),
    ("7 sou 10", 7),
    ("sèt sou dis", 7),
    ("7/10", 7),
    ("zewo", 0),
    ("dis", 10),
    ("en", 1),
    ("youn", 1),
    ("de", 2),
    ("twa", 3),
    ("kat", 4),
    ("senk", 5),
    ("sis", 6),
    ("uit", 8),
    ("nèf", 9),
    ("nef", 9),
    ("anviwon 6", 6),
]

NUMBERS_UNCLEAR = ["5 oswa 6", "senk oswa sis", "yon ti kras", "anpil", ""]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text: str, expected: int) -> None:
    assert parse_number(text, LANG, 0, 10) == expected


@pytest.mark.parametrize("text", NUMBERS_UNCLEAR)
def test_number_unclear(text: str) -> None:
    assert parse_number(text, LANG, 0, 10) is None


def test_number_words_beyond_ten() -> None:
    assert parse_number("onz", LANG) == 11
    assert parse_number("disèt", LANG) == 17
    assert parse_number("ven", LANG) == 20
    assert parse_number("vennsenk", LANG) == 25
    assert parse_number("swasanndis", LANG) == 70
    assert parse_number("san", LANG) == 100


SEVERITY = severity(
    ("Okenn", "Pa genyen"),
    ("Piti", "Lejè"),
    ("Mwayen",),
    ("Grav",),
    ("Trè grav",),
)

CHOICES = [
    ("2", "mild"),
    ("de", "mild"),
    ("b", "mild"),
    ("piti", "mild"),
    ("leje", "mild"),
    ("mwayen", "moderate"),
    ("trè grav", "very_severe"),
    ("tre grav", "very_severe"),
    ("grav", "severe"),
    ("opsyon 3", "moderate"),
    ("okenn", "none"),
    ("mwayenn", "moderate"),
]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice(text: str, expected: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) == expected


def test_choice_unclear() -> None:
    assert parse_choice("piti oswa mwayen", LANG, SEVERITY) is None
    assert parse_choice("8", LANG, SEVERITY) is None


SYMPTOMS = symptoms(
    ("Kè plen", "Anvi vomi"),
    ("Fatig", "Fatige"),
    ("Tèt fè mal", "Maltèt"),
    ("Tèt vire", "Vètij"),
    ("Anyen", "Okenn"),
)

MULTI = [
    ("1 ak 3", ["nausea", "headache"]),
    ("1, 3", ["nausea", "headache"]),
    ("a ak c", ["nausea", "headache"]),
    ("kè plen ak fatig", ["nausea", "fatigue"]),
    ("maltet, tet vire", ["headache", "dizziness"]),
    ("okenn", ["none"]),
]


@pytest.mark.parametrize(("text", "expected"), MULTI)
def test_multi_choice(text: str, expected: list[str]) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) == expected
