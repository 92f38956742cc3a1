"""Numbers in replies: "7", "7/10", "about 7", "siete", "七", "٧", "sèt".

A reply names one number, possibly with its scale ("7 out of 10"); anything else ("5 or 6",
"7.5", "8:30") is unclear and gives None, so the engine asks again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from ..languages import primary
from .normalize import Tokens, as_written, tokenize
from .phrases import PhraseTable
from .words import LanguageWords, load_words

_ENGLISH_FALLBACK_WORDS = 4
IGNORE = -1  # value of phrases that contain a number word but are not a number ("un peu")

# A scale pattern, e.g. ("n", "out", "of", "max"): the sentinels stand for numbers.
_N: Literal["{n}"] = "{n}"
_MAX: Literal["{max}"] = "{max}"
Pattern = tuple[str, ...]
_SLASH: Pattern = (_N, "/", _MAX)


@dataclass(frozen=True, slots=True)
class NumberWords:
    """Lookup tables for one language."""

    anywhere: PhraseTable[int]
    alone: PhraseTable[int]
    scales: tuple[Pattern, ...]


def _expand_compounds(words: LanguageWords) -> list[tuple[str, int]]:
    """ "{tens} {unit}" with every ten (20-90) and unit (1-9) spelling: "twenty one"."""
    out: list[tuple[str, int]] = []
    for template in words.number_compounds:
        for tens in range(20, 100, 10):
            for unit in range(1, 10):
                for tens_word in words.numbers.get(tens, ()):
                    for unit_word in words.numbers.get(unit, ()):
                        phrase = template.replace("{tens}", tens_word).replace("{unit}", unit_word)
                        out.append((phrase, tens + unit))
    return out


def _scale_pattern(template: str) -> Pattern:
    parts: list[str] = []
    rest = template
    while rest:
        cut = min(
            (i for i in (rest.find(_N), rest.find(_MAX)) if i >= 0),
            default=len(rest),
        )
        parts.extend(tokenize(rest[:cut]).folded)
        rest = rest[cut:]
        for marker in (_N, _MAX):
            if rest.startswith(marker):
                parts.append(marker)
                rest = rest[len(marker) :]
    return tuple(parts)


@lru_cache(maxsize=32)
def number_words(lang: str) -> NumberWords:
    words = load_words(lang)
    alone_only = {" ".join(tokenize(w).folded) for w in words.number_alone}
    anywhere: PhraseTable[int] = PhraseTable()
    alone: PhraseTable[int] = PhraseTable()
    anywhere.add_all(words.number_ignore, IGNORE, words)
    for value, spellings in sorted(words.numbers.items()):
        for spelling in spellings:
            alone.add(spelling, value, words)
            if " ".join(tokenize(spelling).folded) not in alone_only:
                anywhere.add(spelling, value, words)
    for phrase, value in _expand_compounds(words):
        anywhere.add(phrase, value, words)
    scales = (*(_scale_pattern(t) for t in words.scale), _SLASH)
    return NumberWords(anywhere, alone, tuple(p for p in scales if _N in p and _MAX in p))


Item = int | str  # a number, or a word that is not one


def _items(tokens: Tokens, table: NumberWords) -> list[Item]:
    items: list[Item] = []
    i = 0
    for match in table.anywhere.scan(tokens):
        items.extend(_plain(tokens.folded[i : match.start]))
        if match.value != IGNORE:
            items.append(match.value)
        i = match.end
    items.extend(_plain(tokens.folded[i:]))
    return items


def _plain(tokens: Sequence[str]) -> list[Item]:
    return [int(t) if t.isdigit() else t for t in tokens]


def _scale_at(items: list[Item], i: int, pattern: Pattern) -> tuple[int, int] | None:
    """(n, max) if ``pattern`` matches at ``i``."""
    if i + len(pattern) > len(items):
        return None
    n = top = None
    for part, item in zip(pattern, items[i:], strict=False):
        if part in (_N, _MAX):
            if not isinstance(item, int):
                return None
            if part == _N:
                n = item
            else:
                top = item
        elif item != part:
            return None
    assert n is not None and top is not None
    return n, top


def _values(items: list[Item], scales: tuple[Pattern, ...], maximum: int | None) -> list[int]:
    """The numbers given as answers; a scale's max ("7 out of 10") is not one."""
    values: list[int] = []
    i = 0
    while i < len(items):
        for pattern in scales:
            found = _scale_at(items, i, pattern)
            if found is None:
                continue
            n, top = found
            # "3/10" answering a 1-5 question is not "3 on this scale": leave both numbers.
            if top > 0 and n <= top and (maximum is None or top == maximum):
                values.append(n)
                i += len(pattern)
                break
        else:
            item = items[i]
            if isinstance(item, int):
                values.append(item)
            i += 1
    return values


def find_numbers(tokens: Tokens, lang: str, maximum: int | None = None) -> list[int]:
    """Every number answered in ``tokens`` (digits or ``lang``'s number words), in order."""
    table = number_words(lang)
    whole = table.alone.whole(tokens)
    if whole is not None:
        return [whole]
    return _values(_items(tokens, table), table.scales, maximum)


def parse_number(
    text: str, lang: str, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    """The one number in ``text`` within [minimum, maximum], else None.

    Number words are looked up in the participant's language, then in English.
    """
    tokens = tokenize(text, keep="/")
    code = primary(lang)
    for candidate in dict.fromkeys((code, "en")):
        # English number words only in a short reply ("seven", "about eight"): in a longer
        # one they are more likely other-language words (Vietnamese "tên", name, is "ten").
        fallback = candidate != code
        if fallback and len(tokens.folded) > _ENGLISH_FALLBACK_WORDS:
            break
        values = set(find_numbers(as_written(tokens) if fallback else tokens, candidate, maximum))
        if not values:
            continue
        if len(values) > 1:
            return None
        value = values.pop()
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            return None
        return value
    return None
