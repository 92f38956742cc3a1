"""Text clean-up for the date parser: one canonical spelling of what people type.

Private to ``dates.py``. ``normalize`` gives the text the lexicon is matched against;
``fold`` removes accents character by character, so the folded text has the same length
and positions as the normalised one and a match found in either can be cut from both.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible characters that phones and copy-paste insert (zero-width, bidi controls, soft
# hyphen): they would split words that look whole on screen.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u00ad\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
             "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"),
    None,
)
# Arabic short vowels and tatweel are optional in writing: "غداً" and "غدا" are one word.
_ARABIC_MARKS = dict.fromkeys([*range(0x064B, 0x0660), 0x0670, 0x0640], None)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'",
                              "\u00b4": "'"})
# Hyphens join words ("après-demain", "terça-feira") but separate numbers in dates ("3-12").
_HYPHEN = re.compile(r"(?<!\d)[-\u2010-\u2015]|[-\u2010-\u2015](?!\d)")
_DASH = re.compile(r"[\u2010-\u2015]")

# Letters that carry no combining mark in Unicode but are still "accented" for typists, and
# Arabic letter variants people use interchangeably.
_SPECIAL_FOLDS = {"đ": "d", "ø": "o", "ł": "l", "ı": "i",
                  "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي"}
_fold_cache: dict[str, str] = {}


def _digit(ch: str) -> str:
    value = unicodedata.decimal(ch, None)
    return ch if value is None else str(value)


def normalize(text: str) -> str:
    """NFKC, invisible characters removed, any script's digits as ASCII, casefolded."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    text = text.translate(_ARABIC_MARKS).translate(_APOSTROPHES)
    if not text.isascii():
        text = "".join(_digit(ch) if ch.isdigit() else ch for ch in text)
    text = _DASH.sub("-", _HYPHEN.sub(" ", text))
    return " ".join(text.casefold().split())


def _fold_char(ch: str) -> str:
    folded = _SPECIAL_FOLDS.get(ch)
    if folded is None:
        parts = unicodedata.normalize("NFD", ch)
        # Keep the base letter only when the rest are combining accents (not Hangul jamo).
        if len(parts) > 1 and all(unicodedata.combining(p) for p in parts[1:]):
            folded = parts[0]
        else:
            folded = ch
    _fold_cache[ch] = folded
    return folded


def fold(text: str) -> str:
    """Accents removed, one character for one character."""
    cache = _fold_cache
    return "".join(cache.get(ch) or _fold_char(ch) for ch in text)


def is_spaced_letter(ch: str) -> bool:
    """A letter of a script that separates words with spaces (not Chinese or Japanese)."""
    return ch.isalpha() and ord(ch) < 0x2E80


def is_boundary(text: str, pos: int) -> bool:
    """True where a word may start or end: not inside a word, not inside a number."""
    if pos <= 0 or pos >= len(text):
        return True
    before, after = text[pos - 1], text[pos]
    if is_spaced_letter(before) and is_spaced_letter(after):
        return False
    return not (before.isdigit() and after.isdigit())
