"""Arabic replies (Modern Standard and dialects) as participants really send them."""

from __future__ import annotations

import pytest

from bot.engine.understand import (
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)

from .options import severity, symptoms

LANG = "ar"

YES_NO = [
    ("نعم", True),
    ("نَعَم", True),  # with vowel marks
    ("نعم.", True),
    ("نعععم", True),
    ("نعم أخذته", True),
    ("نعم اخذته", True),
    ("أيوه", True),
    ("ايوة", True),
    ("آه", True),
    ("اه", True),
    ("طبعا", True),
    ("طبعاً", True),
    ("تمام", True),
    ("أكيد", True),
    ("بلى", True),
    ("👍", True),
    ("yes", True),
    ("ok", True),
    ("لا", False),
    ("لأ", False),
    ("لاااا", False),
    ("لا، نسيت", False),
    ("لم آخذه", False),
    ("لم اخذه بعد", False),
    ("ليس بعد", False),
    ("كلا", False),
    ("لسه", False),
    ("ما أخذته", False),
    ("لا شكرا", False),
    ("no", False),
    ("👎", False),
]

YES_NO_UNCLEAR = [
    "لا أعرف",
    "لا اعرف",
    "مش عارف",
    "ربما",
    "يمكن",
    "لا أتذكر",
    "نعم لا",
    "عندي صداع",
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
    ("٧", 7),  # Arabic-Indic digit
    ("۷", 7),  # Persian digit
    ("سبعة", 7),
    ("سبعه", 7),
    ("سبع", 7),
    ("٧ من ١٠", 7),
    ("7 من 10", 7),
    ("سبعة من عشرة", 7),
    ("٧/١٠", 7),
    ("صفر", 0),
    ("٠", 0),
    ("عشرة", 10),
    ("١٠", 10),
    ("واحد", 1),
    ("اثنين", 2),
    ("ثلاثة", 3),
    ("أربعة", 4),
    ("اربعة", 4),
    ("خمسة", 5),
    ("ثمانية", 8),
    ("تسعة", 9),
    ("تقريبا ٦", 6),
]

NUMBERS_UNCLEAR = ["٥ أو ٦", "خمسة أو ستة", "كثير", "", "١١"]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text: str, expected: int) -> None:
    assert parse_number(text, LANG, 0, 10) == expected


@pytest.mark.parametrize("text", NUMBERS_UNCLEAR)
def test_number_unclear(text: str) -> None:
    assert parse_number(text, LANG, 0, 10) is None


def test_number_words_beyond_ten() -> None:
    assert parse_number("أحد عشر", LANG) == 11
    assert parse_number("عشرون", LANG) == 20
    assert parse_number("عشرين", LANG) == 20
    assert parse_number("واحد وعشرون", LANG) == 21
    assert parse_number("خمسة و عشرين", LANG) == 25
    assert parse_number("مئة", LANG) == 100
    assert parse_number("١٢٣", LANG) == 123


SEVERITY = severity(
    ("لا يوجد", "لا شيء"),
    ("خفيف",),
    ("متوسط",),
    ("شديد",),
    ("شديد جدا", "شديد جداً"),
)

CHOICES = [
    ("2", "mild"),
    ("٢", "mild"),
    ("اثنين", "mild"),
    ("ب", "mild"),  # second letter of the abjad order
    ("b", "mild"),
    ("خفيف", "mild"),
    ("متوسط", "moderate"),
    ("شديد جدا", "very_severe"),
    ("شديد جداً", "very_severe"),
    ("شديد", "severe"),
    ("الخيار ٣", "moderate"),
    ("رقم 3", "moderate"),
    ("لا شيء", "none"),
]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice(text: str, expected: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) == expected


def test_choice_unclear() -> None:
    assert parse_choice("خفيف أو متوسط", LANG, SEVERITY) is None
    assert parse_choice("٩", LANG, SEVERITY) is None


SYMPTOMS = symptoms(
    ("غثيان",),
    ("تعب", "إرهاق"),
    ("صداع",),
    ("دوخة", "دوار"),
    ("لا شيء",),
)

MULTI = [
    ("١ و ٣", ["nausea", "headache"]),
    ("١ و٣", ["nausea", "headache"]),
    ("1، 3", ["nausea", "headache"]),
    ("غثيان وتعب", ["nausea", "fatigue"]),  # "and" glued to the word
    ("غثيان و صداع", ["nausea", "headache"]),
    ("الصداع والدوخة", ["headache", "dizziness"]),
    ("لا شيء", ["none"]),
]


@pytest.mark.parametrize(("text", "expected"), MULTI)
def test_multi_choice(text: str, expected: list[str]) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) == expected
