"""Choosing from options: "2", "two", "b", "(b)", "Leve", "moderat", "1 y 3", "nausea and fatigue".

Order of reading a single choice:

1. the whole reply is one option's label (labels win over positions: an option may be "1");
2. the whole reply, less filler, is a position: "2", "two", "b", "B)", "option 2";
3. option labels found inside the reply, the longest first ("very severe" before "severe");
   two different options found is ambiguous;
4. a single number anywhere ("I'd say 2");
5. a label with a typo ("moderat"), if it clearly beats every other option.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from ..languages import primary
from .normalize import Tokens, as_written, tokenize
from .numbers import find_numbers, number_words
from .phrases import PhraseTable, sub, without
from .types import Choice
from .words import LanguageWords, load_words

# Separators between options that tokenize keeps as tokens for multi-choice replies.
_SEPARATORS = ",;/&+、|·"
_FUZZY_MIN_SCORE = 80.0  # below this a typo is too far from the label to guess
_FUZZY_MARGIN = 10.0  # the best option must beat the next one by this much
_FUZZY_MIN_LENGTH = 4  # shorter replies have too few letters to judge a typo


@dataclass(frozen=True, slots=True)
class _Context:
    words: tuple[LanguageWords, ...]  # participant's language, then English
    labels: PhraseTable[int]  # label -> option index
    label_texts: tuple[tuple[int, str], ...]  # (option index, normalised label) for fuzzy
    noise: PhraseTable[bool]  # filler and "option"/"number" words
    connectors: PhraseTable[bool]
    letters: tuple[str, ...]  # option letters, folded, in order
    count: int


def _languages(lang: str) -> tuple[LanguageWords, ...]:
    code = primary(lang)
    return tuple(load_words(c) for c in dict.fromkeys((code, "en")))


@lru_cache(maxsize=256)
def _context(lang: str, choices: tuple[Choice, ...]) -> _Context:
    every = _languages(lang)
    words = every[0]
    labels: PhraseTable[int] = PhraseTable()
    texts: list[tuple[int, str]] = []
    for index, choice in enumerate(choices):
        for label in choice.labels:
            labels.add(label, index, words)
            text = " ".join(tokenize(label).folded)
            if text:
                texts.append((index, text))
    noise: PhraseTable[bool] = PhraseTable()
    connectors: PhraseTable[bool] = PhraseTable()
    for w in every:
        noise.add_all(w.filler, True, w)
        noise.add_all(w.choice_words, True, w)
        connectors.add_all(w.connectors, True, w)
    own_letters = tuple(t for t in (" ".join(tokenize(x).folded) for x in words.letters) if t)
    return _Context(
        words=every,
        labels=labels,
        label_texts=tuple(texts),
        noise=noise,
        connectors=connectors,
        letters=own_letters,
        count=len(choices),
    )


def _drop_noise(tokens: Tokens, ctx: _Context) -> Tokens:
    return without(tokens, ((m.start, m.end) for m in ctx.noise.scan(tokens)))


def _letter(token: str, ctx: _Context) -> int | None:
    """Position of an option letter: "b" -> 1 (Latin, or the language's own letters)."""
    if len(token) == 1 and token in string.ascii_lowercase:
        index = string.ascii_lowercase.index(token)
    elif token in ctx.letters:
        index = ctx.letters.index(token)
    else:
        return None
    return index if index < ctx.count else None


def _in_language(tokens: Tokens, ctx: _Context, w: LanguageWords) -> Tokens:
    # English words carry no marks: "tên" (Vietnamese, name) is not "ten".
    return tokens if w is ctx.words[0] else as_written(tokens)


def _number_words(tokens: Tokens, ctx: _Context) -> list[int]:
    """Numbers in ``tokens`` (digits or number words, participant's language first)."""
    for w in ctx.words:
        found = find_numbers(_in_language(tokens, ctx, w), w.lang)
        if found:
            return found
    return []


def _position(tokens: Tokens, ctx: _Context) -> int | None:
    """Option index if ``tokens`` are only a position: "2", "b", "two"."""
    value: int | None = None
    if len(tokens.folded) == 1:
        token = tokens.folded[0]
        if token.isdigit():
            value = int(token)
        else:
            letter = _letter(token, ctx)
            if letter is not None:
                return letter
    for w in ctx.words:
        if value is None:
            value = number_words(w.lang).alone.whole(_in_language(tokens, ctx, w))
    return value - 1 if value is not None and 1 <= value <= ctx.count else None


def _fuzzy(tokens: Tokens, ctx: _Context) -> int | None:
    """The option whose label is clearly closest to a misspelt reply, if any."""
    reply = " ".join(tokens.folded)
    if len(reply.replace(" ", "")) < _FUZZY_MIN_LENGTH:
        return None
    best: dict[int, float] = {}
    n = len(tokens.folded)
    for index, label in ctx.label_texts:
        width = label.count(" ") + 1
        score = fuzz.ratio(reply, label)
        if n > width:
            # The label may be a few words inside a longer reply: compare same-size windows.
            for start in range(n - width + 1):
                window = " ".join(tokens.folded[start : start + width])
                score = max(score, fuzz.ratio(window, label))
        best[index] = max(best.get(index, 0.0), score)
    if not best:
        return None
    ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
    top_index, top = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if top >= _FUZZY_MIN_SCORE and top - runner_up >= _FUZZY_MARGIN:
        return top_index
    return None


def parse_choice(text: str, lang: str, choices: Sequence[Choice]) -> str | None:
    """The value of the one option the reply picks, or None if unclear."""
    if not choices:
        return None
    ctx = _context(primary(lang), tuple(choices))
    tokens = tokenize(text)
    if not tokens.folded:
        return None
    index = ctx.labels.whole(tokens)
    if index is None:
        index = _position(_drop_noise(tokens, ctx), ctx)
    if index is None:
        found = {m.value for m in ctx.labels.scan(tokens)}
        if len(found) > 1:
            return None
        if found:
            index = found.pop()
    if index is None:
        numbers = set(_number_words(_drop_noise(tokens, ctx), ctx))
        if len(numbers) == 1:
            value = numbers.pop()
            index = value - 1 if 1 <= value <= ctx.count else None
        elif numbers:
            return None
    if index is None:
        index = _fuzzy(_drop_noise(tokens, ctx), ctx)
    return choices[index].value if index is not None else None


def _segments(tokens: Tokens, ctx: _Context) -> list[tuple[set[int], Tokens]]:
    """Cut a reply into parts at separators and connectors ("and", "y", "和").

    Labels are found first, so a connector inside a label ("aches and pains") does not cut
    it. Each part is (options named by label, tokens outside labels).
    """
    runs: list[Tokens] = []
    start = 0
    for i, token in enumerate(tokens.folded):
        if token in _SEPARATORS:
            runs.append(sub(tokens, start, i))
            start = i + 1
    runs.append(sub(tokens, start, len(tokens.folded)))

    parts: list[tuple[set[int], Tokens]] = []
    for run in runs:
        labels = list(ctx.labels.scan(run))
        in_label = {i for m in labels for i in range(m.start, m.end)}
        cuts = [
            (m.start, m.end)
            for m in ctx.connectors.scan(run)
            if not in_label.intersection(range(m.start, m.end))
        ]
        bounds = [0] + [x for cut in cuts for x in cut] + [len(run.folded)]
        for lo, hi in zip(bounds[::2], bounds[1::2], strict=True):
            named = {m.value for m in labels if lo <= m.start and m.end <= hi}
            leftover = without(sub(run, lo, hi), ((m.start - lo, m.end - lo) for m in labels))
            parts.append((named, leftover))
    return parts


def _part_options(named: set[int], leftover: Tokens, ctx: _Context) -> set[int] | None:
    """Options one part names; empty if it names none; None if it is invalid."""
    if named:
        return named
    rest = _drop_noise(leftover, ctx)
    if not rest.folded:
        return set()
    letters = [_letter(t, ctx) for t in rest.folded]
    if all(x is not None for x in letters):
        return {x for x in letters if x is not None}
    numbers = _number_words(rest, ctx)
    if numbers:
        if any(not 1 <= v <= ctx.count for v in numbers):
            return None
        return {v - 1 for v in numbers}
    guess = _fuzzy(rest, ctx)
    return {guess} if guess is not None else None


def parse_multi_choice(text: str, lang: str, choices: Sequence[Choice]) -> list[str] | None:
    """Values of every option picked ("1, 3", "a c", "nausea and fatigue"), in option order.

    None if nothing is recognised, or if a part of the reply names no option (the engine
    asks again rather than silently dropping something the participant reported).
    """
    if not choices:
        return None
    ctx = _context(primary(lang), tuple(choices))
    tokens = tokenize(text, keep=_SEPARATORS)
    picked: set[int] = set()
    for named, leftover in _segments(tokens, ctx):
        options = _part_options(named, leftover, ctx)
        if options is None:
            return None
        picked |= options
    if not picked:
        return None
    return [choices[i].value for i in sorted(picked)]
