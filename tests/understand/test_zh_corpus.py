"""Simplified Chinese replies as participants really send them (no spaces between words)."""

from __future__ import annotations

import pytest

from bot.engine.understand import (
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)

from .options import severity, symptoms

LANG = "zh"

YES_NO = [
    ("是", True),
    ("是的", True),
    ("是的。", True),
    ("对", True),
    ("对的", True),
    ("嗯", True),
    ("嗯嗯", True),
    ("好的", True),
    ("好的👍", True),
    ("吃了", True),
    ("已经吃了", True),
    ("我吃了", True),
    ("有", True),
    ("没问题", True),
    ("可以", True),
    ("ok", True),
    ("yes", True),
    ("對", True),  # traditional characters
    ("没有", False),
    ("没", False),
    ("不", False),
    ("不是", False),
    ("不对", False),
    ("还没", False),
    ("还没吃", False),
    ("没吃", False),
    ("忘了", False),
    ("没有，忘了", False),
    # A whole yes or no before the first comma is the answer; "好" after it is "fine".
    ("没有，都挺好", False),
    ("没有，一切都好", False),
    ("有，头疼", True),
    ("有。头有点疼", True),
    ("不用了", False),
    ("沒有", False),
    ("no", False),
    ("👎", False),
]

YES_NO_UNCLEAR = [
    "不知道",
    "不确定",
    "不记得",
    "可能",
    "也许",
    "是不是",
    "我头疼",
    "我有点头疼",  # "有点" is "a bit", not "有" (yes)
    "是，不是",  # two whole answers that disagree
    "没有，不知道",
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
    ("７", 7),  # fullwidth digit
    ("七", 7),
    ("七分", 7),
    ("我给七分", 7),
    ("十分之七", 7),
    ("7/10", 7),
    ("７／１０", 7),
    ("零", 0),
    ("十", 10),
    ("一", 1),
    ("两", 2),
    ("二", 2),
    ("三", 3),
    ("大概5", 5),
    ("八", 8),
    ("九", 9),
]

NUMBERS_UNCLEAR = ["五或六", "5或6", "七八", "很疼", "", "一般", "有一点"]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text: str, expected: int) -> None:
    assert parse_number(text, LANG, 0, 10) == expected


@pytest.mark.parametrize("text", NUMBERS_UNCLEAR)
def test_number_unclear(text: str) -> None:
    assert parse_number(text, LANG, 0, 10) is None


def test_number_words_beyond_ten() -> None:
    assert parse_number("十一", LANG) == 11
    assert parse_number("十九", LANG) == 19
    assert parse_number("二十", LANG) == 20
    assert parse_number("二十一", LANG) == 21
    assert parse_number("九十九", LANG) == 99
    assert parse_number("一百", LANG) == 100


SEVERITY = severity(
    ("没有", "无"),
    ("轻微", "轻度"),
    ("中等", "中度"),
    ("严重", "重度"),
    ("非常严重", "极重度"),
)

CHOICES = [
    ("2", "mild"),
    ("２", "mild"),
    ("二", "mild"),
    ("第二个", "mild"),
    ("b", "mild"),
    ("B", "mild"),
    ("轻微", "mild"),
    ("有点轻微", "mild"),
    ("中度", "moderate"),
    ("非常严重", "very_severe"),
    ("严重", "severe"),
    ("我选3", "moderate"),
    ("选项c", "moderate"),
    ("无", "none"),
]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice(text: str, expected: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) == expected


def test_choice_unclear() -> None:
    assert parse_choice("轻微或中等", LANG, SEVERITY) is None
    assert parse_choice("8", LANG, SEVERITY) is None


SYMPTOMS = symptoms(
    ("恶心",),
    ("疲劳", "乏力", "累"),
    ("头痛", "头疼"),
    ("头晕",),
    ("没有",),
)

MULTI = [
    ("1和3", ["nausea", "headache"]),
    ("1，3", ["nausea", "headache"]),
    ("1、3", ["nausea", "headache"]),
    ("恶心和头疼", ["nausea", "headache"]),
    ("恶心、乏力", ["nausea", "fatigue"]),
    ("头晕还有头痛", ["headache", "dizziness"]),
    ("没有", ["none"]),
]


@pytest.mark.parametrize(("text", "expected"), MULTI)
def test_multi_choice(text: str, expected: list[str]) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) == expected
