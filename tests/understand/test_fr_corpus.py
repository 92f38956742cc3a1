"""French replies as participants really send them."""

from __future__ import annotations

import pytest

from bot.engine.understand import (
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)

from .options import severity, symptoms

LANG = "fr"

YES_NO = [
    ("oui", True),
    ("Oui", True),
    ("OUI !", True),
    ("ouiii", True),
    ("ouais", True),
    ("ouai", True),
    ("wi", True),
    ("oui je l'ai pris", True),
    ("je l'ai pris ce matin", True),
    ("d'accord", True),
    ("dac", True),
    ("bien sûr", True),
    ("bien sur", True),
    ("c'est fait", True),
    ("déjà fait", True),
    ("oui merci 👍", True),
    ("yes", True),
    ("si", True),
    ("pas de problème", True),
    ("non", False),
    ("NON", False),
    ("nan", False),
    ("non merci", False),
    ("non pas encore", False),
    ("pas encore", False),
    ("j'ai oublié", False),
    ("jai oublie", False),
    ("je ne l'ai pas pris", False),
    ("pas aujourd'hui", False),
    ("jamais", False),
    ("no", False),
    ("👎", False),
]

YES_NO_UNCLEAR = [
    "je sais pas",
    "je ne sais pas",
    "jsp",
    "peut-être",
    "peut etre",
    "je ne me souviens pas",
    "oui non",
    "j'ai mal à la tête",
    "si j'ai le temps",  # "si" alone is yes; here it is "if"
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
    ("sept", 7),
    ("Sept.", 7),
    ("7 sur 10", 7),
    ("sept sur dix", 7),
    ("7/10", 7),
    ("environ 6", 6),
    ("zéro", 0),
    ("zero", 0),
    ("dix", 10),
    ("une", 1),
    ("un", 1),
    ("deux", 2),
    ("neuf", 9),
    ("je dirais 4", 4),
    ("aucune", 0),
]

NUMBERS_UNCLEAR = ["5 ou 6", "un peu", "beaucoup", "", "cinq ou six", "7,5"]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text: str, expected: int) -> None:
    assert parse_number(text, LANG, 0, 10) == expected


@pytest.mark.parametrize("text", NUMBERS_UNCLEAR)
def test_number_unclear(text: str) -> None:
    assert parse_number(text, LANG, 0, 10) is None


def test_number_words_beyond_ten() -> None:
    assert parse_number("dix-sept", LANG) == 17
    assert parse_number("dix sept", LANG) == 17
    assert parse_number("vingt et un", LANG) == 21
    assert parse_number("vingt-cinq", LANG) == 25
    assert parse_number("soixante-dix", LANG) == 70
    assert parse_number("septante", LANG) == 70
    assert parse_number("quatre-vingts", LANG) == 80
    assert parse_number("quatre-vingt-dix", LANG) == 90
    assert parse_number("cent", LANG) == 100


SEVERITY = severity(
    ("Aucun", "Aucune"),
    ("Léger", "Légère"),
    ("Modéré", "Modérée"),
    ("Sévère", "Grave"),
    ("Très sévère", "Très grave"),
)

CHOICES = [
    ("2", "mild"),
    ("deux", "mild"),
    ("b", "mild"),
    ("léger", "mild"),
    ("leger", "mild"),
    ("légère", "mild"),
    ("modérée", "moderate"),
    ("moderee", "moderate"),
    ("très sévère", "very_severe"),
    ("tres severe", "very_severe"),
    ("sévère", "severe"),
    ("aucune", "none"),
    ("réponse c", "moderate"),
    ("la c", "moderate"),
    ("modere", "moderate"),
]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice(text: str, expected: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) == expected


def test_choice_unclear() -> None:
    assert parse_choice("léger ou modéré", LANG, SEVERITY) is None
    assert parse_choice("9", LANG, SEVERITY) is None


SYMPTOMS = symptoms(
    ("Nausées",),
    ("Fatigue",),
    ("Mal de tête", "Maux de tête"),
    ("Vertiges",),
    ("Aucun",),
)

MULTI = [
    ("1 et 3", ["nausea", "headache"]),
    ("a et c", ["nausea", "headache"]),
    ("nausées et fatigue", ["nausea", "fatigue"]),
    ("nausees, maux de tete", ["nausea", "headache"]),
    ("un peu de fatigue et des vertiges", ["fatigue", "dizziness"]),
    ("aucun", ["none"]),
]


@pytest.mark.parametrize(("text", "expected"), MULTI)
def test_multi_choice(text: str, expected: list[str]) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) == expected
