"""Text normalisation shared by the reply parsers.

A reply becomes a sequence of tokens in two aligned views:

- ``exact`` keeps accents and tone marks. Vietnamese needs them: "sáu" is six, "sau" is
  "after", "dừng" is stop and "đúng" is "correct".
- ``folded`` drops them, because most participants type Spanish, French or Portuguese
  without accents ("si", "nao", "arretez").

Both views always have the same length, so a position in one is a position in the other.
Chinese and Japanese characters are one token each (there are no spaces to split on).
Arabic loses its optional vowel marks and tatweel, and its letter variants are unified
(alef forms, taa marbuta, alef maqsura) in both views: people type them inconsistently.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

# Invisible characters that break word matching; apostrophes are dropped so that
# "don't", "dont" and "m'écrire"/"mecrire" compare equal.
_DROP = re.compile(
    "[\x00\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u061c"
    "'\u2018\u2019\u201b\u02bc\u02bb\u00b4`\u2032\uff07]"
)
_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff]")

_ARABIC = str.maketrans(
    {
        "\u0623": "\u0627",  # alef with hamza above
        "\u0625": "\u0627",  # alef with hamza below
        "\u0622": "\u0627",  # alef with madda
        "\u0671": "\u0627",  # alef wasla
        "\u0649": "\u064a",  # alef maqsura -> yeh
        "\u06cc": "\u064a",  # Persian yeh
        "\u06a9": "\u0643",  # Persian kaf
        "\u0629": "\u0647",  # taa marbuta -> heh
        "\u0624": "\u0648",  # waw with hamza
        "\u0626": "\u064a",  # yeh with hamza
        "\u0640": None,  # tatweel (elongation)
        **{chr(c): None for c in range(0x0610, 0x061B)},
        **{chr(c): None for c in range(0x064B, 0x0660)},  # tashkeel
        "\u0670": None,  # superscript alef
        **{chr(c): None for c in range(0x06D6, 0x06EE)},  # Quranic marks
    }
)

_FOLD_EXTRA = str.maketrans(
    {"đ": "d", "ð": "d", "ø": "o", "ł": "l", "ı": "i", "œ": "oe", "æ": "ae", "ħ": "h"}
)

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")
# Three or more of the same letter ("yesss", "noooo", "لاااا") become two; a lookup that
# fails then retries with doubles squeezed (see ``squeeze``).
_ELONGATED = re.compile(r"([^\W\d_])\1{2,}")
_DOUBLED = re.compile(r"([^\W\d_])\1+")
_COMBINING = re.compile("[\u0300-\u036f]")
_WORD = rf"[{_CJK}]|[0-9]+|(?:(?![{_CJK}])[^\W\d_]|[\u0300-\u036f])+"


# Punctuation that ends a clause: a phrase never spans it ("no, se me olvidó" is "no" and
# "I forgot", not "no se me olvidó", "I didn't forget").
_BREAK = re.compile(r"[,.;:!?¿¡…，。；：！？、،؛؟]")


class Tokens(NamedTuple):
    """One reply as aligned token views (see the module docstring).

    ``breaks`` holds the positions of tokens that follow clause punctuation.
    """

    exact: tuple[str, ...]
    folded: tuple[str, ...]
    breaks: frozenset[int] = frozenset()


def _ascii_digit(match: re.Match[str]) -> str:
    return str(unicodedata.decimal(match.group(), 0))


def clean(text: str) -> str:
    """Casefolded NFKC text with invisible characters and apostrophes removed.

    Non-ASCII decimal digits (Arabic-Indic "٧", Persian "۷", fullwidth "７") become ASCII.
    Punctuation, emoji and spacing are left for ``tokenize`` to drop.
    """
    text = unicodedata.normalize("NFKC", _DROP.sub("", text)).casefold()
    if not text.isascii():
        text = _DROP.sub("", _NON_ASCII_DIGIT.sub(_ascii_digit, text))
        if _ARABIC_SCRIPT.search(text):
            text = text.translate(_ARABIC)
    return _ELONGATED.sub(r"\1\1", text)


@lru_cache(maxsize=8192)
def fold(token: str) -> str:
    """``token`` without accents or tone marks ("não" -> "nao", "đừng" -> "dung")."""
    if token.isascii():
        return token
    stripped = _COMBINING.sub("", unicodedata.normalize("NFD", token))
    return unicodedata.normalize("NFC", stripped).translate(_FOLD_EXTRA)


@lru_cache(maxsize=4096)
def squeeze(token: str) -> str:
    """``token`` with doubled letters made single ("yess" -> "yes", "sii" -> "si")."""
    return _DOUBLED.sub(r"\1", token)


@lru_cache(maxsize=16)
def _token_pattern(keep: str) -> re.Pattern[str]:
    extra = f"|[{re.escape(keep)}]" if keep else ""
    return re.compile(_WORD + extra)


def tokenize(text: str, keep: str = "") -> Tokens:
    """Split a reply into word tokens; punctuation, emoji and spaces are dropped.

    Characters in ``keep`` (e.g. "/" for "7/10", "," between options) survive as
    one-character tokens.
    """
    cleaned = clean(text)
    exact: list[str] = []
    breaks: set[int] = set()
    end = 0
    for match in _token_pattern(keep).finditer(cleaned):
        if exact and _BREAK.search(cleaned, end, match.start()):
            breaks.add(len(exact))
        exact.append(match.group())
        end = match.end()
    return Tokens(tuple(exact), tuple(fold(t) for t in exact), frozenset(breaks))


def as_written(tokens: Tokens) -> Tokens:
    """``tokens`` with no folding: for English words, which never carry marks, so that
    Vietnamese "nó" (it) or "tên" (name) are not read as "no" or "ten"."""
    return Tokens(tokens.exact, tokens.exact, tokens.breaks)


def normalize(text: str, *, keep_accents: bool = False) -> str:
    """The reply as space-separated tokens: a canonical string for comparisons."""
    tokens = tokenize(text)
    return " ".join(tokens.exact if keep_accents else tokens.folded)
