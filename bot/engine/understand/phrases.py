"""Longest-match lookup of word phrases in a tokenised reply.

Phrases are keyed by token tuples, so a lookup is a few dictionary probes per position and
word boundaries come for free ("no" never matches inside "nothing"). Chinese characters are
single tokens, so "不是" is the phrase ("不", "是") and wins over "是" alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from .normalize import Tokens, squeeze, tokenize
from .words import LanguageWords

V = TypeVar("V")

Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Match(Generic[V]):
    """``value`` found at token positions ``start`` (inclusive) to ``end`` (exclusive)."""

    start: int
    end: int
    value: V


class PhraseTable(Generic[V]):
    """Phrases mapped to values. Build once (per language), then only read."""

    __slots__ = ("_exact", "_folded", "_longest", "_clitics", "_clitic_initials", "_starts")

    def __init__(self) -> None:
        self._exact: dict[Key, V] = {}
        self._folded: dict[Key, V] = {}
        self._longest = 0
        self._clitics: tuple[str, ...] = ()
        self._clitic_initials: frozenset[str] = frozenset()
        # First words of all phrases: most tokens of a reply start none, so skip them fast.
        self._starts: set[str] = set()

    def __len__(self) -> int:
        return len(self._folded) + len(self._exact)

    def add(self, phrase: str, value: V, words: LanguageWords) -> None:
        """Add ``phrase`` with the accent rules of ``words``' language; the first value wins.

        Accent-sensitive languages (Vietnamese) match the phrase as written, and also
        without marks unless that unmarked form is listed as ambiguous ("dung" could be
        "dừng", stop, or "đúng", correct).
        """
        tokens = tokenize(phrase)
        if not tokens.exact:
            return
        self._longest = max(self._longest, len(tokens.exact))
        if words.accent_sensitive:
            self._exact.setdefault(tokens.exact, value)
            self._starts.add(tokens.exact[0])
            if " ".join(tokens.folded) in words.unaccented_ambiguous:
                return
        self._folded.setdefault(tokens.folded, value)
        self._starts.add(tokens.folded[0])
        if words.clitics and not set(words.clitics) <= set(self._clitics):
            merged = set(self._clitics) | set(words.clitics)
            self._clitics = tuple(sorted(merged, key=len, reverse=True))
            self._clitic_initials = frozenset(c[0] for c in merged)

    def add_all(self, phrases: Iterable[str], value: V, words: LanguageWords) -> None:
        for phrase in phrases:
            self.add(phrase, value, words)

    def _get(self, exact: Key, folded: Key) -> V | None:
        if self._exact:
            hit = self._exact.get(exact)
            if hit is not None:
                return hit
        return self._folded.get(folded)

    def _longest_at(
        self, exact: Key, folded: Key, i: int, breaks: frozenset[int]
    ) -> tuple[int, V] | None:
        longest = min(self._longest, len(folded) - i)
        if breaks:
            # A phrase stops at clause punctuation.
            longest = next((j - i for j in range(i + 1, i + longest) if j in breaks), longest)
        for k in range(longest, 0, -1):
            hit = self._get(exact[i : i + k], folded[i : i + k])
            if hit is not None:
                return k, hit
        return None

    def _at(self, tokens: Tokens, i: int) -> tuple[int, V] | None:
        exact, folded, breaks = tokens
        if folded[i] in self._starts or exact[i] in self._starts:
            found = self._longest_at(exact, folded, i, breaks)
            if found is not None:
                return found
        # A leading clitic ("و" and, "ال" the) is glued to the word in Arabic script.
        word = folded[i]
        for clitic in self._clitics if word[0] in self._clitic_initials else ():
            if word.startswith(clitic) and len(word) - len(clitic) >= 2:
                rest = word[len(clitic) :]
                found = self._longest_at(
                    exact[:i] + (exact[i][len(clitic) :],) + exact[i + 1 :],
                    folded[:i] + (rest,) + folded[i + 1 :],
                    i,
                    breaks,
                )
                if found is not None:
                    return found
        # "yess", "noo", "sii": retry a single word with doubled letters squeezed.
        short = squeeze(word)
        if short != word:
            hit = self._folded.get((short,))
            if hit is not None:
                return 1, hit
        return None

    def scan(self, tokens: Tokens) -> Iterator[Match[V]]:
        """Non-overlapping matches, left to right, the longest phrase at each position."""
        if not self._starts:
            return
        i, n = 0, len(tokens.folded)
        while i < n:
            found = self._at(tokens, i)
            if found is None:
                i += 1
                continue
            k, value = found
            yield Match(i, i + k, value)
            i += k

    def whole(self, tokens: Tokens) -> V | None:
        """The value if the tokens are exactly one phrase, else None."""
        if not tokens.folded or len(tokens.folded) > self._longest:
            return None
        found = self._at(tokens, 0)
        if found is not None and found[0] == len(tokens.folded):
            return found[1]
        return None


def without(tokens: Tokens, spans: Iterable[tuple[int, int]]) -> Tokens:
    """``tokens`` with the positions in ``spans`` removed."""
    drop: set[int] = set()
    for start, end in spans:
        drop.update(range(start, end))
    if not drop:
        return tokens
    keep = [i for i in range(len(tokens.folded)) if i not in drop]
    breaks: set[int] = set()
    for new, old in enumerate(keep):
        # A break before a dropped token moves to the next kept one.
        if new and any(j in tokens.breaks for j in range(keep[new - 1] + 1, old + 1)):
            breaks.add(new)
    return Tokens(
        tuple(tokens.exact[i] for i in keep),
        tuple(tokens.folded[i] for i in keep),
        frozenset(breaks),
    )


def sub(tokens: Tokens, start: int, end: int) -> Tokens:
    """Tokens ``start`` to ``end`` (exclusive)."""
    return Tokens(
        tokens.exact[start:end],
        tokens.folded[start:end],
        frozenset(b - start for b in tokens.breaks if start < b < end),
    )
