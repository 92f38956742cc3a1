"""The condition language used in `if:` and `set:`: parsing, evaluation, refusals."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.engine.expr import MAX_DEPTH, ExprError, mapping_lookup, parse_expr

DATA: dict[str, Any] = {
    "answer": 7,
    "answers": {"meds": False, "pain": 8, "nausea": "severe", "symptoms": ["rash", "fever"],
                "visit": "2025-03-04"},
    "participant": {"language": "es", "arm": "b", "first_name": "Ana"},
    "params": {"clinic": "north"},
}


def ev(source: str, data: dict[str, Any] | None = None) -> bool:
    return parse_expr(source).evaluate(mapping_lookup(DATA if data is None else data))


# ---- precedence -------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    # `and` binds tighter than `or`: true or (false and false)
    ("true or false and false", True),
    ("(true or false) and false", False),
    # `not` binds tighter than `and` / `or`
    ("not false and false", False),
    ("not (false and false)", True),
    ("not true or true", True),
    ("not not true", True),
    # comparisons bind tighter than `not`, `and`, `or`
    ("not answer == 3", True),
    ("answer == 7 and answers.pain >= 8 or answers.meds", True),
    ("answers.meds or answer < 5", False),
    ("answer > 5 and not answers.meds", True),
    ("false and false or true", True),
    ("true and (false or true)", True),
])
def test_precedence(source: str, expected: bool) -> None:
    assert ev(source) is expected


def test_or_groups_to_the_left() -> None:
    tree = parse_expr("a == 1 or b == 2 or c == 3").tree
    assert tree[0] == "or" and tree[1][0] == "or"


# ---- values and comparisons -------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    ("answer == 7", True),
    ("answer != 7", False),
    ("answer >= 7 and answer <= 7", True),
    ("answer > 6.5", True),
    ("answer < -1", False),
    ("answers.meds == no", True),
    ("answers.meds == false", True),
    ("answers.meds == yes", False),
    ("answers.meds", False),
    ("not answers.meds", True),
    ("answers.nausea == severe", True),
    ("answers.nausea == 'severe'", True),
    ('answers.nausea == "severe"', True),
    ("participant.language == es", True),
    ("params.clinic != south", True),
    ("answers.visit < '2025-04-01'", True),  # ISO dates compare in order
    ("YES == true and No == false and NULL == null", True),  # literals ignore case
])
def test_comparisons(source: str, expected: bool) -> None:
    assert ev(source) is expected


@pytest.mark.parametrize(("source", "expected"), [
    ("answers.nausea in [severe, very_severe]", True),
    ("answers.nausea in [mild, moderate]", False),
    ("answers.nausea not in [mild, moderate]", True),
    ("answers.nausea not in [severe]", False),
    ("rash in answers.symptoms", True),
    ("cough in answers.symptoms", False),
    ("cough not in answers.symptoms", True),
    ("answer in [1, 7, 9]", True),
    ("answer in []", False),
    ("not answers.nausea in [mild]", True),  # `not` applies to the whole comparison
    ("answers.pain in [8] and answers.nausea in [severe]", True),
])
def test_in_and_not_in(source: str, expected: bool) -> None:
    assert ev(source) is expected


def test_bare_words_are_strings_and_roots_are_names() -> None:
    expr = parse_expr("answer in [severe, very_severe] and participant.arm == b")
    assert expr.names == frozenset({"answer", "participant.arm"})
    assert parse_expr("severe").tree == ("lit", "severe")
    assert parse_expr("answers.pain").tree == ("name", "answers.pain")
    assert parse_expr("'answers.pain'").tree == ("lit", "answers.pain")


# ---- null-safety and types --------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    # An unanswered question (a missing value) never crashes and never passes an order test.
    ("answers.missing >= 7", False),
    ("answers.missing < 7", False),
    ("answers.missing == 7", False),
    ("answers.missing == null", True),
    ("answers.missing != 7", True),
    ("answers.missing in [a, b]", False),
    ("answers.missing not in [a, b]", True),
    ("a in answers.missing", False),
    ("answers.missing", False),
    ("not answers.missing", True),
    ("answers.pain.deeper == 1", False),
    ("participant.unknown == x", False),
    # Mismatched types are simply unequal / unordered.
    ("answers.nausea > 3", False),
    ("answers.nausea < 3", False),
    ("answer in severe", False),
    # A yes/no answer is not the number 1 or 0.
    ("answers.meds == 0", False),
    ("answers.meds != 0", True),
    ("answers.meds < 1", False),
    ("answers.meds in [0, 1]", False),
    ("answer == yes", False),
])
def test_null_and_type_safety(source: str, expected: bool) -> None:
    assert ev(source) is expected


def test_evaluate_on_empty_data() -> None:
    for source in ("answer >= 7", "answers.x in [a]", "participant.arm == b or params.p"):
        assert ev(source, {}) is False


def test_lookup_is_only_called_with_names() -> None:
    seen: list[str] = []

    def lookup(name: str) -> Any:
        seen.append(name)
        return None

    parse_expr("answer == severe or params.x in [a, b]").evaluate(lookup)
    assert seen == ["answer", "params.x"]


# ---- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", [
    "",
    "   ",
    "answer =",
    "answer = 3",
    "answer === 3",
    "answer => 3",
    "answer >=",
    "answer > 3 >",
    "1 < answer < 3",
    "answer == 3 answers.pain",
    "answer and",
    "and answer",
    "or",
    "not",
    "(answer == 3",
    "answer == 3)",
    "()",
    "[1, 2",
    "[1 2]",
    "answer in [a, , b]",
    "answer AND answers.pain",
    "answer == 'unclosed",
    "answer & 1",
    "answer; import os",
    "__import__('os').system('ls')",
    "answer.__class__ == 1 or lambda: 1",
    "answer == 3 # comment",
    "answer in {a, b}",
    "answer ~= 3",
])
def test_garbage_is_refused_with_a_message(source: str) -> None:
    with pytest.raises(ExprError) as info:
        parse_expr(source)
    message = str(info.value)
    assert message and "Traceback" not in message


def test_incomplete_list_says_what_is_missing() -> None:
    with pytest.raises(ExprError, match="expected `]`"):
        parse_expr("answer in [a, b")


def test_nesting_is_bounded() -> None:
    fine = "(" * (MAX_DEPTH - 1) + "true" + ")" * (MAX_DEPTH - 1)
    assert parse_expr(fine).evaluate(mapping_lookup({})) is True
    for deep in ("(" * 5000 + "true" + ")" * 5000, "not " * 5000 + "true", "[" * 5000):
        with pytest.raises(ExprError, match="nested too deeply"):
            parse_expr(deep)


def test_random_token_soup_never_crashes() -> None:
    # Whatever a coordinator types, the answer is a parsed condition or an ExprError.
    pieces = ["answer", "answers.x", "==", "!=", "<", ">=", "in", "not", "and", "or", "(",
              ")", "[", "]", ",", "1", "-2.5", "'s'", '"t"', "yes", "null", "severe", "=",
              "!", "&", "{", "}", ".", "..", "#"]
    rng = random.Random(1234)
    lookup = mapping_lookup(DATA)
    for _ in range(3000):
        source = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        try:
            expr = parse_expr(source)
        except ExprError:
            continue
        assert isinstance(expr.evaluate(lookup), bool)


def test_parse_accepts_non_strings_from_yaml() -> None:
    # YAML turns `if: true` and `set: {n: 3}` into a bool and an int before we see them.
    assert parse_expr(True).evaluate(mapping_lookup({})) is True  # type: ignore[arg-type]
    assert parse_expr(3).tree == ("lit", 3)  # type: ignore[arg-type]
