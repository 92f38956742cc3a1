"""A tiny, safe condition language for branches (never `eval`).

Grammar::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | cmp
    cmp     := value (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") value)?
    value   := NUMBER | STRING | "true" | "false" | "yes" | "no" | "null"
             | NAME ("." NAME)* | "[" (value ("," value)*)? "]" | "(" expr ")"

Names are dotted paths: `answer`, `answers.wellbeing`, `participant.language`,
`params.visit_at`. A bare word that is not a known root (e.g. `severe`) is a string, so
`answer in [severe, very_severe]` reads naturally. Order comparisons (`<`, `>=`, ...) with a
missing value (`null`) or across types are false rather than errors, and a yes/no never
equals a number, so an unanswered question never crashes a flow. `==`, `!=`, `in` and
`not in` treat `null` as an ordinary value: `null != 3` and `null not in [a, b]` are true.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ROOTS = frozenset({"answer", "answers", "participant", "params"})

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?\d+(?:\.\d+)?)
      | (?P<str>"[^"]*"|'[^']*')
      | (?P<op>==|!=|<=|>=|<|>|\[|\]|\(|\)|,)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)

_LITERALS: dict[str, Any] = {
    "true": True, "false": False, "yes": True, "no": False, "null": None, "none": None,
}
_KEYWORDS = frozenset({"and", "or", "not", "in"})

#: Deepest nesting of brackets and `not`s a condition may use; deeper input is garbage, and
#: without a bound it would exhaust Python's recursion limit instead of giving an ExprError.
MAX_DEPTH = 32


class ExprError(ValueError):
    """A condition that does not parse; the message is written for coordinators."""


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed condition: evaluate with `evaluate(lookup)`; `names` lists the paths used."""

    source: str
    tree: tuple[Any, ...]
    names: frozenset[str]

    def evaluate(self, lookup: Callable[[str], Any]) -> bool:
        return bool(_eval(self.tree, lookup))


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    source = source.rstrip()
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if not m or m.end() == pos:
            raise ExprError(f"cannot read `{source[pos:].strip()}` in condition `{source}`")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.i = 0
        self.depth = 0
        self.names: set[str] = set()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"condition `{self.source[:60]}` is nested too deeply")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            want = f"`{value}`" if value else "more"
            raise ExprError(f"condition `{self.source}` is incomplete: expected {want}")
        self.i += 1
        return tok

    def at(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[1] == value

    def parse(self) -> tuple[Any, ...]:
        if not self.tokens:
            raise ExprError("condition is empty")
        tree = self.or_()
        if self.peek() is not None:
            raise ExprError(f"unexpected `{self.peek()[1]}` in condition `{self.source}`")  # type: ignore[index]
        return tree

    def or_(self) -> tuple[Any, ...]:
        left = self.and_()
        while self.at("or"):
            self.take()
            left = ("or", left, self.and_())
        return left

    def and_(self) -> tuple[Any, ...]:
        left = self.not_()
        while self.at("and"):
            self.take()
            left = ("and", left, self.not_())
        return left

    def not_(self) -> tuple[Any, ...]:
        if self.at("not"):
            self.take()
            self.enter()
            inner = self.not_()
            self.depth -= 1
            return ("not", inner)
        return self.cmp()

    def cmp(self) -> tuple[Any, ...]:
        left = self.value()
        tok = self.peek()
        if tok is None:
            return left
        if tok[1] in ("==", "!=", "<", "<=", ">", ">=", "in"):
            self.take()
            return ("cmp", tok[1], left, self.value())
        if tok[1] == "not" and self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1] == "in":
            self.take()
            self.take()
            return ("cmp", "not in", left, self.value())
        return left

    def value(self) -> tuple[Any, ...]:
        kind, text = self.take()
        if kind == "num":
            return ("lit", float(text) if "." in text else int(text))
        if kind == "str":
            return ("lit", text[1:-1])
        if text == "(":
            self.enter()
            inner = self.or_()
            self.take(")")
            self.depth -= 1
            return inner
        if text == "[":
            self.enter()
            items: list[tuple[Any, ...]] = []
            while not self.at("]"):
                items.append(self.value())
                if self.peek() is None:
                    break  # let take("]") below say what is missing
                if not self.at("]"):
                    self.take(",")
            self.take("]")
            self.depth -= 1
            return ("list", tuple(items))
        if kind == "name" and text not in _KEYWORDS:
            low = text.lower()
            if low in _LITERALS:
                return ("lit", _LITERALS[low])
            if text.split(".")[0] in ROOTS:
                self.names.add(text)
                return ("name", text)
            return ("lit", text)  # a bare word is a string, e.g. a choice value
        raise ExprError(f"unexpected `{text}` in condition `{self.source}`")


def parse_expr(source: str) -> Expr:
    if not isinstance(source, str):
        source = str(source)
    p = _Parser(source)
    tree = p.parse()
    return Expr(source=source, tree=tree, names=frozenset(p.names))


def _equal(a: Any, b: Any) -> bool:
    # yes/no answers are booleans and Python counts True as 1: keep them apart from numbers,
    # so `answers.pain == 1` is not true for a "yes".
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "in":
        if a is None:
            return False
        if isinstance(b, str):
            return isinstance(a, str) and a in b
        if isinstance(b, (list, tuple, set, frozenset)):
            return any(_equal(a, item) for item in b)
        return False
    if op == "not in":
        return not _compare("in", a, b)
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return False
    try:
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def _eval(node: tuple[Any, ...], lookup: Callable[[str], Any]) -> Any:
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "name":
        return lookup(node[1])
    if tag == "list":
        return [_eval(item, lookup) for item in node[1]]
    if tag == "and":
        return bool(_eval(node[1], lookup)) and bool(_eval(node[2], lookup))
    if tag == "or":
        return bool(_eval(node[1], lookup)) or bool(_eval(node[2], lookup))
    if tag == "not":
        return not _eval(node[1], lookup)
    return _compare(node[1], _eval(node[2], lookup), _eval(node[3], lookup))


def mapping_lookup(data: Mapping[str, Any]) -> Callable[[str], Any]:
    """A lookup over nested mappings; a missing path gives None."""

    def lookup(path: str) -> Any:
        cur: Any = data
        for part in path.split("."):
            if not isinstance(cur, Mapping) or part not in cur:
                return None
            cur = cur[part]
        return cur

    return lookup
