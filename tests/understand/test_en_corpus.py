"""English replies as participants really send them."""

from __future__ import annotations

import pytest

from bot.engine.understand import (
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)

from .options import severity, symptoms

LANG = "en"

YES_NO = [
    ("yes, but no headache", True),
    ("no, I'm ok", False),
    ("yes", True),
    ("Yes I did", True),
    ("YES!!!", True),
    ("yeah", True),
    ("yep 👍", True),
    ("yup", True),
    ("yesss", True),
    ("yess", True),
    ("Y", True),
    ("k", True),
    ("ok", True),
    ("sure", True),
    ("of course", True),
    ("uh huh", True),
    ("uh-huh", True),
    ("mhm", True),
    ("👍", True),
    ("👍🏽", True),
    ("✅", True),
    ("I did", True),
    ("did", True),
    ("done", True),
    ("yes, took it this morning", True),
    ("yes i have", True),
    ("no", False),
    ("No.", False),
    ("NO", False),
    ("nope", False),
    ("nah", False),
    ("noooo", False),
    ("n", False),
    ("not yet", False),
    ("I didn't", False),
    ("i didnt", False),
    ("I did not take it", False),
    ("no I forgot", False),
    ("👎", False),
    ("no thanks", False),
    ("not really", False),
    ("I haven't", False),
    ("never", False),
    ("Yes, no problems", True),
]

YES_NO_UNCLEAR = [
    "yes no",
    "maybe",
    "I don't know",
    "idk",
    "not sure",
    "dont remember",
    "yes 👎",
    "",
    "   ",
    "🙂",
    "what is this?",
    "I have a headache",
    "I did my best, I don't know",
    "y n",
    "never mind",
    "ok, I forgot",  # "ok" opens many replies; "I forgot" is a whole answer
    "no, yes",
    "no, I don't know",
]


@pytest.mark.parametrize(("text", "expected"), YES_NO)
def test_yes_no(text: str, expected: bool) -> None:
    assert parse_yes_no(text, LANG) is expected


@pytest.mark.parametrize("text", YES_NO_UNCLEAR)
def test_yes_no_unclear(text: str) -> None:
    assert parse_yes_no(text, LANG) is None


NUMBERS = [
    ("7", 7),
    ("7/10", 7),
    ("7 / 10", 7),
    ("about 7", 7),
    ("a 7", 7),
    ("7 out of 10", 7),
    ("i'd say 8", 8),
    ("I'd say an 8.", 8),
    ("seven", 7),
    ("SEVEN", 7),
    ("Seven!", 7),
    ("zero", 0),
    ("0", 0),
    ("ten", 10),
    ("10/10 pain", 10),
    ("maybe 3", 3),
    ("3 today", 3),
    ("7 7", 7),
    ("７", 7),
    ("٧", 7),
    ("none", 0),
]

NUMBERS_UNCLEAR = [
    "5 or 6",
    "5-6",
    "7.5",
    "between 4 and 5",
    "high",
    "",
    "no idea",
    "11",  # outside 0-10
    "3/5",  # another scale than the question's
    "-",
    "seven or eight",
]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text: str, expected: int) -> None:
    assert parse_number(text, LANG, 0, 10) == expected


@pytest.mark.parametrize("text", NUMBERS_UNCLEAR)
def test_number_unclear(text: str) -> None:
    assert parse_number(text, LANG, 0, 10) is None


def test_number_words_beyond_ten() -> None:
    assert parse_number("twenty one", LANG) == 21
    assert parse_number("twenty-one", LANG) == 21
    assert parse_number("ninety", LANG) == 90
    assert parse_number("a hundred", LANG) == 100
    assert parse_number("120", LANG, 0, 100) is None
    assert parse_number("3", LANG, minimum=5) is None


SEVERITY = severity()

CHOICES = [
    ("2", "mild"),
    ("2.", "mild"),
    ("#2", "mild"),
    ("two", "mild"),
    ("b", "mild"),
    ("B)", "mild"),
    ("(b)", "mild"),
    ("option b", "mild"),
    ("mild", "mild"),
    ("MILD", "mild"),
    ("Mild, thanks", "mild"),
    ("moderat", "moderate"),
    ("modrate", "moderate"),
    ("sever", "severe"),
    ("severe", "severe"),
    ("very severe", "very_severe"),
    ("it's very severe today", "very_severe"),
    ("pretty severe", "severe"),
    ("none", "none"),
    ("I'd say 3", "moderate"),
    ("e", "very_severe"),
]

CHOICES_UNCLEAR = [
    "mild or moderate",
    "6",
    "f",
    "0",
    "",
    "xyz",
    "2 or 3",
    "terrible",
]


@pytest.mark.parametrize(("text", "expected"), CHOICES)
def test_choice(text: str, expected: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) == expected


@pytest.mark.parametrize("text", CHOICES_UNCLEAR)
def test_choice_unclear(text: str) -> None:
    assert parse_choice(text, LANG, SEVERITY) is None


SYMPTOMS = symptoms()

MULTI = [
    ("1, 3", ["nausea", "headache"]),
    ("1,3", ["nausea", "headache"]),
    ("1 and 3", ["nausea", "headache"]),
    ("3 and 1", ["nausea", "headache"]),
    ("1 3", ["nausea", "headache"]),
    ("a c", ["nausea", "headache"]),
    ("A, C", ["nausea", "headache"]),
    ("nausea and fatigue", ["nausea", "fatigue"]),
    ("Nausea, fatige", ["nausea", "fatigue"]),
    ("i have nausea and a headache", ["nausea", "headache"]),
    ("one and three", ["nausea", "headache"]),
    ("2", ["fatigue"]),
    ("none", ["none"]),
    ("1, 1, 3", ["nausea", "headache"]),
    ("1/2", ["nausea", "fatigue"]),
    ("nausea & dizziness", ["nausea", "dizziness"]),
]

MULTI_UNCLEAR = [
    "",
    "1 and 9",
    "nausea and back pain",
    "stuff",
]


@pytest.mark.parametrize(("text", "expected"), MULTI)
def test_multi_choice(text: str, expected: list[str]) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) == expected


@pytest.mark.parametrize("text", MULTI_UNCLEAR)
def test_multi_choice_unclear(text: str) -> None:
    assert parse_multi_choice(text, LANG, SYMPTOMS) is None
