"""Portuguese (Brazil and Portugal) replies as participants really send them."""

from __future__ import annotations

import pytest

from bot.engine.understand import (
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)

from .options import severity, symptoms

LANG = "pt"

YES_NO = [
    ("sim", True),
    ("Sim", True),
    ("SIM!!", True),
    ("simmm", True),
    ("sim, já tomei", True),
    ("ja tomei", True),
    ("já", True),
    ("claro", True),
    ("com certeza", True),
    ("tá bom", True),
    ("ta bom", True),
    ("beleza", True),
    ("uhum", True),
    ("s", True),
    ("ok 👍", True),
    ("yes", True),
    ("não", False),
    ("nao", False),
    ("NÃO", False),
    ("naum", False),
    ("ñ", False),
    ("n", False),
    ("ainda não", False),
    ("ainda nao", False),
    ("ainda nao tomei", False),
    ("não tomei", False),
    ("esqueci", False),
    ("não, esqueci", False),
    ("nunca", False),
    ("não obrigado", False),
    ("👎", False),
    ("no", False),
]

YES_NO_UNCLEAR = [
    "não sei",
    "nao sei",
    "sei lá",
    "talvez",
    "não lembro",
    "não tenho certeza",
    "sim não",
    "estou com dor de cabeça",
    "estou no hospital",  # "no" is "in the", not English "no"
    "tá doendo",  # "it is hurting"
    "isso dói",
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
    ("sete", 7),
    ("SETE", 7),
    ("7 de 10", 7),
    ("sete de dez", 7),
    ("nota 8", 8),
    ("uns 5", 5),
    ("zero", 0),
    ("dez", 10),
    ("dois", 2),
    ("duas", 2),
    ("três", 3),
    ("tres", 3),
    ("uma", 1),
    ("nenhuma", 0),
    ("eu diria 6", 6),
]

NUMBERS_UNCLEAR = ["5 ou 6", "um pouco", "muito", "", "cinco ou seis"]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text: str, expected: int) -> None:
    assert parse_number(text, LANG, 0, 10) == expected


@pytest.mark.parametrize("text", NUMBERS_UNCLEAR)
def test_number_unclear(text: str) -> None:
    assert parse_number(text, LANG, 0, 10) is None


def test_number_words_beyond_ten() -> None:
    assert parse_number("dezesseis", LANG) == 16
    assert parse_number("vinte e um", LANG) == 21
    assert parse_number("quarenta e cinco", LANG) == 45
    assert parse_number("cem", LANG) == 100


SEVERITY = severity(
    ("Nenhum", "Nenhuma"),
    ("Leve",),
    ("Moderado", "Moderada"),
    ("Grave", "Severo"),
    ("Muito grave",),
)

CHOICES = [
    ("2", "mild"),
    ("dois", "mild"),
    ("b", "mild"),
    ("leve", "mild"),
    ("Leve", "mild"),
    ("moderada", "moderate"),
    ("muito grave", "very_severe"),
    ("grave", "severe"),
    ("nenhuma", "none"),
    ("opção c", "moderate"),
    ("opcao 3", "moderate"),
    ("moderdo", "moderate"),
]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice(text: str, expected: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) == expected


def test_choice_unclear() -> None:
    assert parse_choice("leve ou moderado", LANG, SEVERITY) is None
    assert parse_choice("7", LANG, SEVERITY) is None


SYMPTOMS = symptoms(
    ("Náusea", "Enjoo"),
    ("Cansaço", "Fadiga"),
    ("Dor de cabeça",),
    ("Tontura",),
    ("Nenhum",),
)

MULTI = [
    ("1 e 3", ["nausea", "headache"]),
    ("1, 3", ["nausea", "headache"]),
    ("a e c", ["nausea", "headache"]),
    ("enjoo e cansaço", ["nausea", "fatigue"]),
    ("nausea, dor de cabeca", ["nausea", "headache"]),
    ("nenhum", ["none"]),
]


@pytest.mark.parametrize(("text", "expected"), MULTI)
def test_multi_choice(text: str, expected: list[str]) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) == expected
