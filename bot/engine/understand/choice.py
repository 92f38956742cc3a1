"""Choosing from options: "2", "two", "b", "(b)", "Leve", "moderat", "1 y 3", "nausea and fatigue".

Order of reading a single choice:

1. the whole reply is one option's label (labels win over positions: an option may be "1");
2. the whole reply, less filler, is a position: "2", "two", "b", "B)", "option 2";
3. option labels found inside the reply, the longest first ("very severe" before "severe"),
   and clock times when the options show times ("18h30" picks "Evening (6:30 pm)");
   two different options found is ambiguous. A negated label ("not severe", "no es grave",
   "不严重") is never picked: the reply reads as the other option it names, or as unclear;
4. a single number anywhere ("I'd say 2");
5. a label with a typo ("moderat"), if it clearly beats every other option.

Stages 4 and 5 are skipped after a negation ("not 2", "not sever"): guessing there could pick
the very option the participant ruled out.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

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
# A negation reaches a label this many words on ("não foi grave", "没有那么严重").
_NEGATION_REACH = 2
# Between hours and minutes, folded: "18h30", Creole "6è30", Vietnamese "8g30" / "8 giờ 30",
# Chinese "8点30". A colon or a dot leaves no token.
_HOUR_MARKS = frozenset({"h", "e", "g", "gio", "点"})
# Clock-time markers after the minutes: "6:30 pm", "6:30 p. m.".
_AM = (("am",), ("a", "m"))
_PM = (("pm",), ("p", "m"))


@dataclass(frozen=True, slots=True)
class _Context:
    words: tuple[LanguageWords, ...]  # participant's language, then English
    labels: PhraseTable[int]  # label -> option index
    label_texts: tuple[tuple[int, str], ...]  # (option index, normalised label) for fuzzy
    noise: PhraseTable[bool]  # filler and "option"/"number" words
    connectors: PhraseTable[bool]
    negations: PhraseTable[bool]  # the participant's language
    english_negations: PhraseTable[bool]  # read on unfolded tokens, like English numbers
    letters: tuple[str, ...]  # option letters, folded, in order
    times: tuple[tuple[int, int, int, bool], ...]  # (option index, hour, minute, hour is 0-23)
    count: int


class _Hit(NamedTuple):
    """Options named at tokens ``start`` to ``end``: a label, or a time (no option: unknown)."""

    start: int
    end: int
    options: frozenset[int]
    negated: bool = False


class _Reading(NamedTuple):
    hits: list[_Hit]
    negations: list[tuple[int, int]]  # spans of negation words that negate a hit
    dangling: bool  # a negation followed by words that name no option ("not 2")


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
    negations: PhraseTable[bool] = PhraseTable()
    negations.add_all(words.negations, True, words)
    english_negations: PhraseTable[bool] = PhraseTable()
    for w in every[1:]:
        english_negations.add_all(w.negations, True, w)
    own_letters = tuple(t for t in (" ".join(tokenize(x).folded) for x in words.letters) if t)
    return _Context(
        words=every,
        labels=labels,
        label_texts=tuple(texts),
        noise=noise,
        connectors=connectors,
        negations=negations,
        english_negations=english_negations,
        letters=own_letters,
        times=_option_times(choices),
        count=len(choices),
    )


def _clock_times(tokens: Tokens) -> list[tuple[int, int, int, int, bool]]:
    """Clock times in ``tokens``: (start, end, hour, minute, whether the hour is 0-23).

    "8:30", "18h30", "6è30", "6.30 pm" are tokenised "8 30", "18 h 30", "6 e 30", "6 30 pm".
    Without am/pm, "8:30" may be morning or evening: the hour is then known only modulo 12.
    """
    found: list[tuple[int, int, int, int, bool]] = []
    folded, n, i = tokens.folded, len(tokens.folded), 0
    while i < n:
        j = i + 1
        if j < n and folded[j] in _HOUR_MARKS:
            j += 1
        if not (
            folded[i].isdigit()
            and int(folded[i]) <= 23
            and j < n
            and len(folded[j]) == 2
            and folded[j].isdigit()
            and int(folded[j]) <= 59
        ):
            i += 1
            continue
        hour, minute, end = int(folded[i]), int(folded[j]), j + 1
        sure = hour == 0 or hour > 12
        for marks, pm in ((_AM, False), (_PM, True)):
            mark = next((m for m in marks if folded[end : end + len(m)] == m), None)
            if mark is not None and 1 <= hour <= 12:
                hour, sure, end = hour % 12 + (12 if pm else 0), True, end + len(mark)
                break
        found.append((i, end, hour, minute, sure))
        i = end
    return found


def _option_times(choices: tuple[Choice, ...]) -> tuple[tuple[int, int, int, bool], ...]:
    """The time each option's labels show, if any: "Evening (6:30 pm)", "晚上6:30"."""
    out: list[tuple[int, int, int, bool]] = []
    for index, choice in enumerate(choices):
        times = {(h, m, sure) for label in choice.labels for _, _, h, m, sure in
                 _clock_times(tokenize(label))}
        # "6:30 pm" in the English label settles the "6:30" of a translation.
        if any(sure for _, _, sure in times):
            times = {t for t in times if t[2]}
        out.extend((index, h, m, sure) for h, m, sure in sorted(times))
    return tuple(out)


def _options_at(hour: int, minute: int, sure: bool, ctx: _Context) -> frozenset[int]:
    return frozenset(
        index
        for index, h, m, known in ctx.times
        if m == minute and (h == hour if sure and known else h % 12 == hour % 12)
    )


def _inside(inner: tuple[int, int], outer: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def _read(tokens: Tokens, ctx: _Context) -> _Reading:
    """Options the reply names by label or time, with the negated ones marked."""
    hits: list[_Hit] = []
    times = _clock_times(tokens) if ctx.times else []
    for start, end, hour, minute, sure in times:
        hits.append(_Hit(start, end, _options_at(hour, minute, sure, ctx)))
    labels = [m for m in ctx.labels.scan(tokens)
              if not any(_inside((m.start, m.end), (t[0], t[1])) for t in times)]
    if labels:
        # A label inside a longer filler phrase is filler: "beaucoup" in "merci beaucoup".
        noise = [(m.start, m.end) for m in ctx.noise.scan(tokens)]
        hits.extend(
            _Hit(m.start, m.end, frozenset((m.value,)))
            for m in labels
            if not any(_inside((m.start, m.end), s) and s[1] - s[0] > m.end - m.start
                       for s in noise)
        )
    found = [*ctx.negations.scan(tokens), *ctx.english_negations.scan(as_written(tokens))]
    if not found:
        return _Reading(hits, [], False)
    hits.sort(key=lambda h: h.start)
    negated: set[int] = set()  # positions in hits
    used: list[tuple[int, int]] = []
    dangling = False
    for neg in sorted(found, key=lambda m: m.start):
        span = (neg.start, neg.end)
        # A negation word inside a longer label is part of it: "not at all", "không có".
        if any(not _inside((h.start, h.end), span) and h.start < neg.end and neg.start < h.end
               for h in hits):
            continue
        target = next((k for k, h in enumerate(hits) if h.start >= neg.end), None)
        if target is not None and hits[target].start - neg.end <= _NEGATION_REACH and not any(
            j in tokens.breaks for j in range(neg.end, hits[target].start + 1)
        ):
            negated.add(target)
            used.append(span)
        elif neg.end < len(tokens.folded) and neg.end not in tokens.breaks:
            dangling = True
    # Labels that were the negation word itself ("没有" is also "none") name nothing.
    kept = [
        h._replace(negated=k in negated)
        for k, h in enumerate(hits)
        if k in negated or not any(_inside((h.start, h.end), span) for span in used)
    ]
    return _Reading(kept, used, dangling)


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
        reading = _read(tokens, ctx)
        if any(not h.options for h in reading.hits):
            return None  # a time no option has
        named = {i for h in reading.hits if not h.negated for i in h.options}
        named -= {i for h in reading.hits if h.negated for i in h.options}
        if len(named) > 1:
            return None
        if named:
            index = named.pop()
        elif reading.negations or reading.dangling:
            return None
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
        reading = _read(run, ctx)
        spans = [(h.start, h.end) for h in reading.hits] + reading.negations
        in_label = {i for start, end in spans for i in range(start, end)}
        cuts = [
            (m.start, m.end)
            for m in ctx.connectors.scan(run)
            if not in_label.intersection(range(m.start, m.end))
        ]
        bounds = [0] + [x for cut in cuts for x in cut] + [len(run.folded)]
        for lo, hi in zip(bounds[::2], bounds[1::2], strict=True):
            # A negated option ("no headache") is left out; its words are not left over.
            named = {i for h in reading.hits if lo <= h.start and h.end <= hi and not h.negated
                     for i in h.options}
            leftover = without(
                sub(run, lo, hi),
                ((start - lo, end - lo) for start, end in spans if lo <= start and end <= hi),
            )
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
