"""Spanish replies as participants really send them (accents often missing)."""

from __future__ import annotations

import pytest

from bot.engine.understand import (
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)

from .options import severity, symptoms

LANG = "es"

YES_NO = [
    ("sí", True),
    ("si", True),
    ("Si", True),
    ("SII", True),
    ("siiii", True),
    ("sí claro", True),
    ("Sí, ya me la tomé", True),
    ("si ya me la tome", True),
    ("ya", True),
    ("claro que sí", True),
    ("por supuesto", True),
    ("simón", True),
    ("sip", True),
    ("vale", True),
    ("ok 👍", True),
    ("yes", True),  # answered in English
    ("s", True),
    ("no", False),
    ("NO", False),
    ("nop", False),
    ("Noooo", False),
    ("todavía no", False),
    ("todavia no", False),
    ("aún no", False),
    ("no, se me olvidó", False),
    ("se me olvido", False),
    ("no gracias", False),
    ("nunca", False),
    ("nel", False),
    ("n", False),
    ("no me la he tomado", False),
    ("👎", False),
    ("nope", False),
    ("no se me olvidó, ya me la tomé", True),
]

YES_NO_UNCLEAR = [
    "no sé",
    "no se",
    "tal vez",
    "quizás",
    "a lo mejor",
    "no me acuerdo",
    "sí y no",
    "si no",
    "¿qué?",
    "me duele la cabeza",
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
    ("siete", 7),
    ("SIETE", 7),
    ("un 7", 7),
    ("como un 7", 7),
    ("7 de 10", 7),
    ("siete de diez", 7),
    ("7/10", 7),
    ("cero", 0),
    ("diez", 10),
    ("dos", 2),
    ("tres", 3),
    ("seis", 6),
    ("una", 1),
    ("uno", 1),
    ("ninguna", 0),
    ("seven", 7),  # English number word
    ("yo diría 8", 8),
    ("nueve 😣", 9),
]

NUMBERS_UNCLEAR = ["5 o 6", "cinco o seis", "un poco", "mucho", "", "once", "7,5"]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text: str, expected: int) -> None:
    assert parse_number(text, LANG, 0, 10) == expected


@pytest.mark.parametrize("text", NUMBERS_UNCLEAR)
def test_number_unclear(text: str) -> None:
    assert parse_number(text, LANG, 0, 10) is None


def test_number_words_beyond_ten() -> None:
    assert parse_number("once", LANG) == 11
    assert parse_number("veintidós", LANG) == 22
    assert parse_number("veintidos", LANG) == 22
    assert parse_number("treinta y cinco", LANG) == 35
    assert parse_number("cien", LANG) == 100


SEVERITY = severity(
    ("Ninguno", "Nada"),
    ("Leve",),
    ("Moderado",),
    ("Grave", "Severo"),
    ("Muy grave",),
)

CHOICES = [
    ("2", "mild"),
    ("dos", "mild"),
    ("b", "mild"),
    ("Leve", "mild"),
    ("leve", "mild"),
    ("LEVE", "mild"),
    ("moderada", "moderate"),
    ("moderado", "moderate"),
    ("muy grave", "very_severe"),
    ("es muy grave", "very_severe"),
    ("grave", "severe"),
    ("severo", "severe"),
    ("nada", "none"),
    ("opción c", "moderate"),
    ("opcion 3", "moderate"),
    ("la c", "moderate"),
    ("mild", "mild"),
]

CHOICES_UNCLEAR = ["leve o moderado", "8", "no sé", "regular"]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice(text: str, expected: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) == expected


@pytest.mark.parametrize("text", CHOICES_UNCLEAR)
def test_choice_unclear(text: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) is None


SYMPTOMS = symptoms(
    ("Náuseas",),
    ("Cansancio", "Fatiga"),
    ("Dolor de cabeza",),
    ("Mareo",),
    ("Ninguno",),
)

MULTI = [
    ("1 y 3", ["nausea", "headache"]),
    ("1, 3", ["nausea", "headache"]),
    ("a y c", ["nausea", "headache"]),
    ("nauseas y cansancio", ["nausea", "fatigue"]),
    ("Náuseas, dolor de cabeza", ["nausea", "headache"]),
    ("tengo mareo y fatiga", ["fatigue", "dizziness"]),
    ("uno y tres", ["nausea", "headache"]),
    ("ninguno", ["none"]),
]


@pytest.mark.parametrize(("text", "expected"), MULTI)
def test_multi_choice(text: str, expected: list[str]) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) == expected


def test_multi_choice_unclear() -> None:
    assert parse_multi_choice("náuseas y dolor de espalda", LANG, SYMPTOMS) is None
    assert parse_multi_choice("1 y 8", LANG, SYMPTOMS) is None
