"""Vietnamese replies, with and without tone marks, as participants really send them."""

from __future__ import annotations

import pytest

from bot.engine.understand import (
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)

from .options import severity, symptoms

LANG = "vi"

YES_NO = [
    ("có", True),
    ("Có", True),
    ("CÓ", True),
    ("co", True),  # typed without tone marks
    ("có ạ", True),
    ("dạ có", True),
    ("da co", True),
    ("vâng", True),
    ("vang", True),
    ("ừ", True),
    ("uh", True),
    ("rồi", True),
    ("uống rồi", True),
    ("đã uống rồi", True),
    ("da uong roi", True),
    ("đúng rồi", True),
    ("đúng", True),
    ("dung roi", True),
    ("ok 👍", True),
    ("yes", True),
    ("không", False),
    ("Không", False),
    ("khong", False),
    ("ko", False),
    ("k", False),  # "không", not the English "k" (ok)
    ("chưa", False),
    ("chua", False),
    ("chưa uống", False),
    ("không, quên rồi", False),
    ("quên mất", False),
    ("không có", False),
    ("no", False),
    ("👎", False),
]

YES_NO_UNCLEAR = [
    "không biết",
    "khong biet",
    "ko nhớ",
    "có lẽ",
    "có thể",
    "có không",
    "dung",  # "dừng" (stop) or "đúng" (right): unclear without tone marks
    "tôi bị đau đầu",
    "tôi bị đau đầu rồi",
    "nó đau",  # "nó" is "it", not English "no"
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
    ("bảy", 7),
    ("Bảy", 7),
    ("bẩy", 7),
    ("7 trên 10", 7),
    ("bảy trên mười", 7),
    ("7/10", 7),
    ("không", 0),
    ("mười", 10),
    ("một", 1),
    ("mot", 1),
    ("hai", 2),
    ("ba", 3),
    ("bốn", 4),
    ("bon", 4),
    ("năm", 5),
    ("sáu", 6),
    ("tám", 8),
    ("chín", 9),
    ("chin", 9),
    ("khoảng 6", 6),
]

NUMBERS_UNCLEAR = [
    "5 hoặc 6",
    "sau",  # "sáu" (six) or "sau" (after)
    "sau bữa ăn",  # "after the meal"
    "bay",  # "bảy" (seven) or "bay" (fly)
    "thứ hai",  # Monday
    "tên tôi là Lan",  # "tên" is "name", not English "ten"
    "không biết",
    "",
]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text: str, expected: int) -> None:
    assert parse_number(text, LANG, 0, 10) == expected


@pytest.mark.parametrize("text", NUMBERS_UNCLEAR)
def test_number_unclear(text: str) -> None:
    assert parse_number(text, LANG, 0, 10) is None


def test_number_words_beyond_ten() -> None:
    assert parse_number("mười một", LANG) == 11
    assert parse_number("mười lăm", LANG) == 15
    assert parse_number("hai mươi", LANG) == 20
    assert parse_number("hai mươi mốt", LANG) == 21
    assert parse_number("hai mươi lăm", LANG) == 25
    assert parse_number("một trăm", LANG) == 100


SEVERITY = severity(
    ("Không có",),
    ("Nhẹ",),
    ("Vừa", "Trung bình"),
    ("Nặng",),
    ("Rất nặng",),
)

CHOICES = [
    ("2", "mild"),
    ("hai", "mild"),
    ("b", "mild"),
    ("nhẹ", "mild"),
    ("nhe", "mild"),
    ("trung bình", "moderate"),
    ("trung binh", "moderate"),
    ("rất nặng", "very_severe"),
    ("rat nang", "very_severe"),
    ("nặng", "severe"),
    ("chọn 3", "moderate"),
    ("không có", "none"),
]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice(text: str, expected: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) == expected


def test_choice_unclear() -> None:
    assert parse_choice("nhẹ hoặc vừa", LANG, SEVERITY) is None
    assert parse_choice("9", LANG, SEVERITY) is None


SYMPTOMS = symptoms(
    ("Buồn nôn",),
    ("Mệt mỏi",),
    ("Đau đầu", "Nhức đầu"),
    ("Chóng mặt",),
    ("Không có",),
)

MULTI = [
    ("1 và 3", ["nausea", "headache"]),
    ("1, 3", ["nausea", "headache"]),
    ("a va c", ["nausea", "headache"]),
    ("buồn nôn và mệt mỏi", ["nausea", "fatigue"]),
    ("buon non, dau dau", ["nausea", "headache"]),
    ("không có", ["none"]),
]


@pytest.mark.parametrize(("text", "expected"), MULTI)
def test_multi_choice(text: str, expected: list[str]) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) == expected
