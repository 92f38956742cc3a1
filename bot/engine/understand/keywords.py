"""Keywords recognised in any conversation: stop, start, help and language switches.

Every language's keywords are checked, whatever the participant's language (a Spanish
speaker may text STOP). A keyword counts only as the (near-)whole reply ("STOP", "stop
please 🙏"); opt-out phrases about messages count anywhere ("please stop texting me"),
so "my stomach pain won't stop" is not an opt-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..languages import SUPPORTED, primary
from .normalize import Tokens, tokenize
from .phrases import PhraseTable, sub, without
from .types import Keyword, KeywordKind
from .words import load_words

# Stop beats everything (never keep texting someone who may have asked us to stop).
_PRIORITY: tuple[KeywordKind, ...] = ("stop", "start", "help", "language")
_PREFIX = "prefix"
_FILLER = "filler"


@dataclass(frozen=True, slots=True)
class _Tables:
    bare: PhraseTable[tuple[str, str | None]]  # (kind or "prefix", language code)
    phrases: PhraseTable[KeywordKind]
    filler: PhraseTable[bool]
    prefix: PhraseTable[bool]


@lru_cache(maxsize=32)
def _tables(lang: str) -> _Tables:
    bare: PhraseTable[tuple[str, str | None]] = PhraseTable()
    phrases: PhraseTable[KeywordKind] = PhraseTable()
    filler: PhraseTable[bool] = PhraseTable()
    prefix: PhraseTable[bool] = PhraseTable()
    # The participant's language first: its meaning wins where two languages disagree.
    order = dict.fromkeys((lang, *SUPPORTED)) if lang in SUPPORTED else dict.fromkeys(SUPPORTED)
    every = [load_words(code) for code in order]
    for words in every:
        phrases.add_all(words.stop_phrases, "stop", words)
    for words in every:
        phrases.add_all(words.start_phrases, "start", words)
    for kind in ("stop", "start", "help"):
        for words in every:
            bare.add_all(getattr(words, kind), (kind, None), words)
    for words in every:
        bare.add_all(words.language_names, ("language", words.lang), words)
        filler.add_all(words.filler, True, words)
        prefix.add_all(words.language_prefix, True, words)
    # Words that may stand beside a keyword: "in" or "language" ("stop, in English
    # please") and politeness. In the same table, so the longest phrase still wins: the
    # "了" of "别发了" belongs to the keyword, not to the filler.
    for words in every:
        bare.add_all(words.language_prefix, (_PREFIX, None), words)
        bare.add_all(words.filler, (_FILLER, None), words)
    return _Tables(bare, phrases, filler, prefix)


def _drop_filler(tokens: Tokens, tables: _Tables) -> Tokens:
    return without(tokens, ((m.start, m.end) for m in tables.filler.scan(tokens)))


def _language_after_prefix(tokens: Tokens, tables: _Tables) -> str | None:
    """ "LANG fr", "language es", "idioma español", "in English please"."""
    rest = tokens
    while rest.folded:
        found = next(iter(tables.prefix.scan(rest)), None)
        if found is None or found.start != 0:
            return None
        rest = sub(rest, found.end, len(rest.folded))
        # A bare code is accepted only after a prefix: "es" alone is just a word.
        if len(rest.folded) == 1 and rest.folded[0] in SUPPORTED:
            return rest.folded[0]
        named = _drop_filler(rest, tables)
        if len(named.folded) == 1 and named.folded[0] in SUPPORTED:
            return named.folded[0]
        value = tables.bare.whole(named)
        if value is not None and value[0] == "language":
            return value[1]
    return None


def _whole_message(tokens: Tokens, tables: _Tables) -> Keyword | None:
    """A reply made only of keywords (and filler): "STOP", "stop stop", "Help please"."""
    matches = list(tables.bare.scan(tokens))
    if sum(m.end - m.start for m in matches) != len(tokens.folded):
        return None
    kinds = {m.value[0] for m in matches}
    for kind in _PRIORITY[:3]:
        if kind in kinds:
            return Keyword(kind)
    languages = {m.value[1] for m in matches if m.value[0] == "language"}
    if len(languages) == 1:
        return Keyword("language", languages.pop())
    return None


def detect_keyword(text: str, lang: str) -> Keyword | None:
    """The keyword ``text`` amounts to, or None for an ordinary reply."""
    tables = _tables(primary(lang))
    tokens = tokenize(text)
    if not tokens.folded:
        return None
    found = _whole_message(tokens, tables)
    if found is not None:
        return found
    kinds = {m.value for m in tables.phrases.scan(tokens)}
    for kind in _PRIORITY[:2]:
        if kind in kinds:
            return Keyword(kind)
    code = _language_after_prefix(tokens, tables)
    return Keyword("language", code) if code else None
