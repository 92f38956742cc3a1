"""Free-text dates and times in the participant's language ("mañana a las 3", "kesho saa tisa").

Two layers:

1. Our own fast path. The reply is normalised (NFKC, case, invisible characters, digits of
   any script, accents optional), cut into tokens with the language's words from
   ``translations/dates/<lang>.yaml`` and read with a small grammar: a day word, a weekday, a
   calendar date, a clock time, a time of day, or a mix of these. dateparser 1.5 gets many of
   these wrong ("friday at 5" is 5 May) and costs about a millisecond a call.
2. dateparser, only for replies that mention a date in a shape the grammar does not know,
   always with the language given, relative to the participant's ``now``, future preferred.

Conventions; the engine reads the answer back for confirmation, so these only need to be
the likely reading, not the only one:

- A bare hour 1-7 without am/pm or a time of day is afternoon ("a las 3" is 15:00); 8-12
  stays as written; an hour written with a leading zero ("03:00") is taken literally.
- A time without a day is today if still ahead, otherwise tomorrow. "Today" stays today.
- A weekday is the next one after today (today's own weekday means a week later);
  "next <weekday>" is that day in the next calendar week, Monday to Sunday.
- All-digit dates follow the language's ``date_order``: English and Chinese put the month
  first (3/12 is 12 March), every other language the day. If that reading is impossible
  (25/12) the other one is used. A date without a year is the next such date.
- Swahili time ("saa tisa") counts from 06:00; see ``clock`` in sw.yaml.
- A time of day alone gives a default hour: morning 09:00, afternoon 15:00, evening 19:00.
- Two different days, or two different times, in one reply are ambiguous: None.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import yaml

from ..languages import primary
from .dates_normalize import fold, is_boundary, is_spaced_letter, normalize
from .words import translations_dir

__all__ = ["When", "parse_datetime", "parse_when", "warm_up"]


@dataclass(frozen=True, slots=True)
class When:
    """An understood date or date and time.

    ``at`` is aware, in the zone of the ``now`` it was parsed against. When the reply named
    only a day, ``has_time`` is False and ``at`` is that day's start (local midnight).
    """

    at: datetime
    has_time: bool


def parse_when(text: str, lang: str, now: datetime) -> When | None:
    """The date (and time, if given) that ``text`` names, or None if it names none.

    ``now`` must be aware and in the participant's own zone; it is the base for "tomorrow"
    and for preferring future dates. Raises LookupError for a language without date words.
    """
    zone = now.tzinfo
    if zone is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (the participant's local time)")
    lex = _lexicon(lang)
    clean = normalize(text[:_MAX_CHARS])
    if lex.rewrite is not None:
        clean = _rewrite(clean, lex.rewrite)
    if not clean:
        return None
    reading = _read(_lex(clean, lex), lex, now.replace(tzinfo=None))
    when = _settle(reading, now, zone)
    if when is None and reading.ask_dateparser:
        when = _dateparser_when(clean, lex, now, zone, timeish=reading.timeish)
    return when


def parse_datetime(text: str, lang: str, now: datetime, *, want_time: bool = True
                   ) -> datetime | None:
    """``parse_when(...).at``, or None.

    With ``want_time`` (a question that asks for a day and a time) a reply naming only a day
    is incomplete and gives None, so the caller can ask for the time; use ``parse_when`` to
    keep the day. Without it, a day alone gives that day's local midnight.
    """
    when = parse_when(text, lang, now)
    if when is None or (want_time and not when.has_time):
        return None
    return when.at


def warm_up(langs: Iterable[str]) -> None:
    """Load the word lists and dateparser's language data now rather than on a first reply.

    dateparser's first call in a language costs ~0.2 s; call this once at boot.
    """
    now = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    for lang in langs:
        lex = _lexicon(lang)
        parse_when(lex.sample + " 3pm", lang, now)
        _dateparser_when(lex.sample, lex, now, UTC, timeish=False)


# --- tokens -----------------------------------------------------------------------------

_MAX_CHARS: Final = 400     # a date is near the start; bounds the work on a long SMS

# Token kinds.
_REL, _WEEKDAY, _MONTH, _NEXT, _THIS = "rel", "weekday", "month", "next", "this"
_PERIOD, _AT, _HOUR, _MINUTE = "period", "at", "hour", "minute"
_HALF, _QUARTER, _QUARTER_TO = "half", "quarter", "quarter_to"
_IN, _DAY_UNIT, _WEEK_UNIT, _HOUR_UNIT = "in", "day_unit", "week_unit", "hour_unit"
_DAY_MARK, _MONTH_MARK, _MONTH_PREFIX, _CLOCK = "day_mark", "month_mark", "month_prefix", "clock"
_NUM, _TIME, _DOT, _DATE, _ISO, _UNKNOWN = "num", "time", "dot", "date", "iso", "unknown"

# Kinds that show the reply is about a date even when the grammar could not finish it.
_DATEISH: Final = frozenset({_REL, _WEEKDAY, _MONTH, _NEXT, _DAY_MARK, _MONTH_MARK,
                             _MONTH_PREFIX, _DATE, _ISO, _WEEK_UNIT})
# Kinds that show the reply names a time of day.
_TIMEISH: Final = frozenset({_TIME, _DOT, _HOUR, _PERIOD, _CLOCK, _HALF, _QUARTER})
_UNITS: Final = frozenset({_DAY_UNIT, _WEEK_UNIT, _HOUR_UNIT})

_PERIOD_KINDS: Final = frozenset({"am", "pm", "morning", "midday", "afternoon", "evening",
                                  "night", "midnight"})
_DEFAULT_PERIOD_HOURS: Final[Mapping[str, int]] = {
    "morning": 9, "midday": 12, "afternoon": 15, "evening": 19, "night": 20, "midnight": 0}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    value: int = 0
    parts: tuple[int, ...] = ()
    tag: str = ""              # time-of-day kind of a period
    digits: bool = False       # written in digits, not words
    zero: bool = False         # leading zero ("03"): a 24-hour clock
    ordinal: bool = False      # "5th", "1er"


_NUMERIC: Final = re.compile(r"""
      (?P<iy>\d{4})[-/.](?P<im>\d{1,2})[-/.](?P<id>\d{1,2})(?!\d)
    | (?P<th>\d{1,2})(?::|h)(?P<tm>\d{2})(?!\d)
    | (?P<da>\d{1,2})(?P<sep>[-/.])(?P<db>\d{1,2})(?P=sep)(?P<dc>\d{4}|\d{2})(?!\d)
    | (?P<pa>\d{1,2})\.(?P<pb>\d{2})(?![\d.])
    | (?P<sa>\d{1,2})[-/](?P<sb>\d{1,2})(?![-/\d])
    | (?P<n>\d+)
""", re.VERBOSE)


def _numeric_token(m: re.Match[str]) -> _Tok:
    def g(name: str) -> int:
        return int(m.group(name))

    if m.group("iy"):
        return _Tok(_ISO, parts=(g("iy"), g("im"), g("id")))
    if m.group("th"):
        return _Tok(_TIME, parts=(g("th"), g("tm")), zero=_padded(m.group("th")))
    if m.group("da"):
        return _Tok(_DATE, parts=(g("da"), g("db"), g("dc")))
    if m.group("pa"):
        return _Tok(_DOT, parts=(g("pa"), g("pb")), zero=_padded(m.group("pa")))
    if m.group("sa"):
        return _Tok(_DATE, parts=(g("sa"), g("sb")))
    raw = m.group("n")
    return _Tok(_NUM, value=int(raw), digits=True, zero=_padded(raw))


def _padded(digits: str) -> bool:
    return len(digits) > 1 and digits[0] == "0"


# --- the word lists -----------------------------------------------------------------------

_T = TypeVar("_T")


class _Matcher(Generic[_T]):
    """Longest whole-word phrase match, with or without accents.

    Exact spellings win over accent-less ones of the same length. With ``strict`` (where
    accents tell words apart, as in Vietnamese) a phrase typed with accents must match them;
    one typed without any still matches.
    """

    __slots__ = ("exact", "folded", "lengths", "strict")

    def __init__(self, strict: bool) -> None:
        self.exact: dict[str, _T] = {}
        self.folded: dict[str, _T] = {}
        self.lengths: tuple[int, ...] = ()
        self.strict = strict

    def add(self, phrase: str, value: _T, where: str) -> None:
        key = normalize(phrase)
        if not key:
            raise ValueError(f"{where}: empty phrase")
        old = self.exact.get(key)
        if old is not None and old != value:
            raise ValueError(f"{where}: {phrase!r} is listed with two meanings")
        self.exact.setdefault(key, value)
        # On an accent-less clash the earlier section wins (see _SECTIONS).
        self.folded.setdefault(fold(key), value)
        if len(key) not in self.lengths:
            self.lengths = tuple(sorted({*self.lengths, len(key)}, reverse=True))

    def match(self, text: str, folded: str, pos: int) -> tuple[int, _T] | None:
        if not is_boundary(text, pos):
            return None
        size = len(text)
        for length in self.lengths:
            end = pos + length
            if end > size or not is_boundary(text, end):
                continue
            piece = text[pos:end]
            hit = self.exact.get(piece)
            if hit is not None:
                return end, hit
            bare = folded[pos:end]
            hit = self.folded.get(bare)
            if hit is not None and (not self.strict or piece == bare):
                return end, hit
        return None


@dataclass(frozen=True, slots=True)
class _Lexicon:
    dateparser_lang: str
    order: str
    words: _Matcher[tuple[_Tok, ...]]
    ordinals: tuple[str, ...]
    clock_offset: int | None
    clock_digits_local: bool
    period_hours: Mapping[str, int]
    rewrite: _Matcher[str] | None
    sample: str                 # a day word, for warming up


# Sections in the order their words are registered: on an accent-less clash the earlier
# wins, so harmless words (fillers, "this") shadow risky ones (Vietnamese "toi" is far more
# often "tôi", I, than "tối", evening).
_LIST_SECTIONS: Final[Mapping[str, str]] = {
    "fillers": "", "this": _THIS, "next": _NEXT, "at": _AT, "hour_marks": _HOUR,
    "minute_marks": _MINUTE, "half": _HALF, "quarter": _QUARTER, "quarter_to": _QUARTER_TO,
    "in": _IN, "day_units": _DAY_UNIT, "week_units": _WEEK_UNIT, "hour_units": _HOUR_UNIT,
    "day_marks": _DAY_MARK, "month_marks": _MONTH_MARK, "month_prefix": _MONTH_PREFIX,
}
_NUMBERED_SECTIONS: Final[Mapping[str, tuple[str, int, int]]] = {
    "relative_days": (_REL, 0, 31), "weekdays": (_WEEKDAY, 0, 6), "months": (_MONTH, 1, 12),
    "numbers": (_NUM, 0, 99),
}
_SECTIONS: Final = ("fillers", "this", "next", "relative_days", "weekdays", "months",
                    "numbers", "periods", "at", "hour_marks", "minute_marks", "half",
                    "quarter", "quarter_to", "in", "day_units", "week_units", "hour_units",
                    "day_marks", "month_marks", "month_prefix")
_SETTINGS: Final = frozenset({"dateparser", "date_order", "strict_accents", "clock",
                              "period_hours", "ordinal_suffixes", "combos", "base", "rewrite"})
_DATE_ORDERS: Final = frozenset({"dmy", "mdy", "ymd"})


def _lexicon(lang: str) -> _Lexicon:
    # Keyed by directory too, so a test or a deployment can point elsewhere at any time.
    return _build_lexicon(str(translations_dir() / "dates"), primary(lang))


@functools.lru_cache(maxsize=64)
def _load_yaml(path: str) -> Mapping[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    return data


@functools.lru_cache(maxsize=64)
def _build_lexicon(directory: str, lang: str) -> _Lexicon:
    path = Path(directory) / f"{lang}.yaml"
    if not lang or not path.is_file():
        raise LookupError(f"no date words for language {lang!r} (expected {path})")
    data = _load_yaml(str(path))
    rewrite: _Matcher[str] | None = None
    base = data.get("base")
    if base is not None:
        # A language read through another one's words (Haitian Creole through French).
        base_path = Path(directory) / f"{base}.yaml"
        if not isinstance(base, str) or base == lang or not base_path.is_file():
            raise ValueError(f"{path}: base must name another language's file")
        rewrite = _Matcher(strict=False)
        for phrase, replacement in _mapping(data.get("rewrite", {}), f"{path}: rewrite"):
            if not isinstance(replacement, str):
                raise ValueError(f"{path}: rewrite {phrase!r} must give text")
            rewrite.add(phrase, normalize(replacement), f"{path}: rewrite")
        own = {k: v for k, v in data.items() if k not in ("base", "rewrite")}
        data = {**_load_yaml(str(base_path)), **own}
    return _compile(data, rewrite, str(path))


def _mapping(raw: object, where: str) -> list[tuple[str, object]]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping")
    out: list[tuple[str, object]] = []
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ValueError(f"{where}: {key!r} must be text (quote it)")
        out.append((key, value))
    return out


def _phrases(raw: object, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ValueError(f"{where}: expected a list of phrases (quote yes/no/on/off)")
    return list(raw)


def _compile(data: Mapping[str, Any], rewrite: _Matcher[str] | None, where: str) -> _Lexicon:
    unknown = set(data) - set(_SECTIONS) - _SETTINGS
    if unknown:
        raise ValueError(f"{where}: unknown sections {sorted(unknown)}")
    order = data.get("date_order", "dmy")
    if order not in _DATE_ORDERS:
        raise ValueError(f"{where}: date_order must be one of {sorted(_DATE_ORDERS)}")
    dp_lang = data.get("dateparser")
    if not isinstance(dp_lang, str):
        raise ValueError(f"{where}: dateparser (the language code for dateparser) is missing")

    words: _Matcher[tuple[_Tok, ...]] = _Matcher(strict=bool(data.get("strict_accents")))
    sample = ""
    for section in _SECTIONS:
        raw = data.get(section)
        if raw is None:
            continue
        at = f"{where}: {section}"
        if section in _LIST_SECTIONS:
            kind = _LIST_SECTIONS[section]
            toks = (_Tok(kind),) if kind else ()
            for phrase in _phrases(raw, at):
                words.add(phrase, toks, at)
        elif section in _NUMBERED_SECTIONS:
            kind, low, high = _NUMBERED_SECTIONS[section]
            for phrase, value in _mapping(raw, at):
                if not isinstance(value, int) or not low <= value <= high:
                    raise ValueError(f"{at}: {phrase!r} needs a number {low}-{high}")
                words.add(phrase, (_Tok(kind, value=value),), at)
                if section == "relative_days" and value == 1 and not sample:
                    sample = phrase
        else:   # periods
            for phrase, value in _mapping(raw, at):
                if value not in _PERIOD_KINDS:
                    raise ValueError(f"{at}: {phrase!r} needs one of {sorted(_PERIOD_KINDS)}")
                words.add(phrase, (_Tok(_PERIOD, tag=str(value)),), at)

    clock_offset: int | None = None
    clock_digits_local = False
    clock = data.get("clock")
    if clock is not None:
        if not isinstance(clock, dict) or not isinstance(clock.get("offset"), int):
            raise ValueError(f"{where}: clock needs words and an offset")
        clock_offset = clock["offset"]
        clock_digits_local = bool(clock.get("digits_are_local", False))
        for phrase in _phrases(clock.get("words"), f"{where}: clock"):
            words.add(phrase, (_Tok(_CLOCK),), f"{where}: clock")

    # A combo stands for several phrases at once ("tonight" = today + evening).
    for phrase, parts in _mapping(data.get("combos", {}), f"{where}: combos"):
        toks_list: list[_Tok] = []
        for part in _phrases(parts, f"{where}: combos"):
            found = words.exact.get(normalize(part))
            if found is None:
                raise ValueError(f"{where}: combo {phrase!r} uses unknown phrase {part!r}")
            toks_list.extend(found)
        words.add(phrase, tuple(toks_list), f"{where}: combos")

    hours = dict(_DEFAULT_PERIOD_HOURS)
    for kind, hour in _mapping(data.get("period_hours", {}), f"{where}: period_hours"):
        if kind not in hours or not isinstance(hour, int) or not 0 <= hour <= 23:
            raise ValueError(f"{where}: period_hours {kind!r} needs an hour 0-23")
        hours[kind] = hour
    ordinals = sorted((fold(normalize(s)) for s in
                       _phrases(data.get("ordinal_suffixes", []), f"{where}: ordinals")),
                      key=len, reverse=True)
    return _Lexicon(dateparser_lang=dp_lang, order=str(order), words=words,
                    ordinals=tuple(ordinals), clock_offset=clock_offset,
                    clock_digits_local=clock_digits_local, period_hours=hours,
                    rewrite=rewrite, sample=sample or "1")


# --- lexing -----------------------------------------------------------------------------

def _rewrite(text: str, matcher: _Matcher[str]) -> str:
    folded = fold(text)
    out: list[str] = []
    pos, size = 0, len(text)
    while pos < size:
        hit = matcher.match(text, folded, pos)
        if hit is None:
            out.append(text[pos])
            pos += 1
        else:
            pos, replacement = hit
            out.append(replacement)
    return normalize("".join(out))


def _lex(text: str, lex: _Lexicon) -> list[_Tok]:
    folded = fold(text)
    toks: list[_Tok] = []
    pos, size = 0, len(text)
    while pos < size:
        ch = text[pos]
        if ch.isspace():
            pos += 1
            continue
        hit = lex.words.match(text, folded, pos)
        if hit is not None:
            pos, found = hit
            toks.extend(found)
            continue
        if ch.isdigit():
            m = _NUMERIC.match(text, pos)
            assert m is not None        # \d+ always matches here
            tok, pos = _numeric_token(m), m.end()
            if tok.kind == _NUM:
                for suffix in lex.ordinals:
                    end = pos + len(suffix)
                    if folded.startswith(suffix, pos) and is_boundary(text, end):
                        tok = _Tok(_NUM, value=tok.value, digits=True, ordinal=True)
                        pos = end
                        break
            toks.append(tok)
            continue
        if is_spaced_letter(ch):
            end = pos + 1
            while end < size and (is_spaced_letter(text[end]) or text[end] == "'"):
                end += 1
            toks.append(_Tok(_UNKNOWN))
            pos = end
            continue
        if ch.isalpha():        # a Chinese character that is not in the word list
            toks.append(_Tok(_UNKNOWN))
        pos += 1                # punctuation, emoji
    return toks


# --- reading ----------------------------------------------------------------------------

@dataclass(slots=True)
class _Clock:
    hour: int
    minute: int
    period: str | None
    zero: bool
    local: bool         # Swahili hour, counted from 06:00
    index: int          # position of the number among the tokens


@dataclass(slots=True)
class _Reading:
    days: set[date] = field(default_factory=set)
    day_index: list[int] = field(default_factory=list)
    clocks: list[_Clock] = field(default_factory=list)
    loose_periods: dict[int, str] = field(default_factory=dict)
    weekdays: list[tuple[int, int]] = field(default_factory=list)
    nexts: int = 0
    offset: timedelta | None = None
    invalid: bool = False
    dateish: bool = False
    timeish: bool = False
    period_hours: Mapping[str, int] = field(default_factory=dict)
    clock_offset: int = 6

    @property
    def ask_dateparser(self) -> bool:
        # Only when we saw date words but could make nothing of them; never to break a tie.
        return (self.dateish and not self.invalid and not self.days and not self.clocks
                and not self.weekdays and self.offset is None)


def _kind(toks: list[_Tok], i: int) -> str:
    return toks[i].kind if 0 <= i < len(toks) else ""


def _read(toks: list[_Tok], lex: _Lexicon, now: datetime) -> _Reading:
    """Walk the tokens once, collecting days, clock times and times of day."""
    today = now.date()
    r = _Reading(period_hours=lex.period_hours, clock_offset=lex.clock_offset or 6)
    r.dateish = any(t.kind in _DATEISH for t in toks)
    r.timeish = any(t.kind in _TIMEISH for t in toks)

    def add_day(day: date | None, index: int) -> None:
        if day is None:
            r.invalid = True
        else:
            r.days.add(day)
            r.day_index.append(index)

    i, n = 0, len(toks)
    while i < n:
        t = toks[i]
        k = t.kind
        end = _relative(toks, i, r, today)
        if end is not None:
            i = end
            continue
        if k == _REL:
            add_day(today + timedelta(days=t.value), i)
        elif k == _WEEKDAY:
            r.weekdays.append((t.value, i))
        elif k == _NEXT:
            r.nexts += 1
        elif k == _PERIOD:
            r.loose_periods[i] = t.tag
        elif k in (_AT, _CLOCK) and _kind(toks, i + 1) in (_NUM, _TIME, _DOT):
            local = k == _CLOCK and lex.clock_offset is not None
            end = _clock(toks, i + 1, r, local=local, digits_local=lex.clock_digits_local)
            if end is not None:
                i = end
                continue
        elif k == _DAY_UNIT and _kind(toks, i + 1) == _NUM:
            # "dia 5 de dezembro", "ngày 5 tháng 12", "tarehe 5"
            day_num = toks[i + 1]
            month, end = _month_after(toks, i + 2)
            i = _add_calendar(r, today, day_num.value, month, toks, end, i)
            continue
        elif k == _NUM:
            end = _number(toks, i, r, today, lex)
            if end is not None:
                i = end
                continue
        elif k == _MONTH:
            if _kind(toks, i + 1) == _NUM and toks[i + 1].value <= 31:
                i = _add_calendar(r, today, toks[i + 1].value, t.value, toks, i + 2, i)
                continue
        elif k in (_TIME, _DOT):
            end = _clock(toks, i, r, local=False, digits_local=False)
            if end is not None:
                i = end
                continue
            add_day(_numeric_date(today, t.parts, lex.order), i)
        elif k == _DATE and len(t.parts) == 2 and _is_clock_range(toks, i):
            # "10-11am", "3-5pm": a time range; take its start.
            i = _clock(toks, i, r, local=False, digits_local=False) or i + 1
            continue
        elif k in (_DATE, _ISO):
            add_day(_numeric_date(today, t.parts, "ymd" if k == _ISO else lex.order), i)
        i += 1

    if r.days:
        # With a date given, a weekday only confirms it ("Tuesday the 8th").
        if any(all(day.weekday() != weekday for day in r.days) for weekday, _ in r.weekdays):
            r.invalid = True
    else:
        for weekday, index in r.weekdays:
            add_day(_weekday_date(today, weekday, r.nexts), index)
    return r


def _is_clock_range(toks: list[_Tok], i: int) -> bool:
    after = toks[i + 1] if i + 1 < len(toks) else None
    return after is not None and (after.kind == _HOUR or after.tag in ("am", "pm"))


def _relative(toks: list[_Tok], i: int, r: _Reading, today: date) -> int | None:
    """ "in 2 days", "2 days from now", "3天后", "baada ya siku 2"; the end index or None."""
    kinds = [_kind(toks, j) for j in range(i, i + 3)]
    count: int
    unit: str
    if kinds[0] == _IN and kinds[1] == _NUM and (kinds[2] in _UNITS or kinds[2] == _HOUR):
        # Only here may a clock mark count hours ("dans 2 heures"): "3点后" is after 3 o'clock.
        count, unit, end = toks[i + 1].value, kinds[2], i + 3
    elif kinds[0] == _IN and kinds[1] in _UNITS and kinds[2] == _NUM:
        count, unit, end = toks[i + 2].value, kinds[1], i + 3
    elif kinds[0] == _NUM and kinds[1] in _UNITS and kinds[2] == _IN:
        count, unit, end = toks[i].value, kinds[1], i + 3
    elif kinds[0] in _UNITS and kinds[1] == _NUM and kinds[2] == _IN:
        count, unit, end = toks[i + 1].value, kinds[0], i + 3
    else:
        return None
    if unit in (_HOUR, _HOUR_UNIT):
        if count > 48:
            r.invalid = True
        else:
            r.offset = timedelta(hours=count)
        return end
    days = count * (7 if unit == _WEEK_UNIT else 1)
    if days > 366:
        r.invalid = True
    else:
        r.days.add(today + timedelta(days=days))
        r.day_index.append(i)
    r.dateish = True
    return end


def _month_after(toks: list[_Tok], j: int) -> tuple[int | None, int]:
    """A month right after a day number: "diciembre" or "tháng 12". (month, next index)"""
    if _kind(toks, j) == _MONTH:
        return toks[j].value, j + 1
    if _kind(toks, j) == _MONTH_PREFIX and _kind(toks, j + 1) == _NUM:
        return toks[j + 1].value, j + 2
    return None, j


def _add_calendar(r: _Reading, today: date, day: int, month: int | None,
                  toks: list[_Tok], end: int, index: int) -> int:
    """Record day (and month, and a year if one follows); return the index after them."""
    year: int | None = None
    if month is not None and _kind(toks, end) == _NUM and toks[end].value >= 1000:
        year = toks[end].value
        end += 1
    found = (_day_of_month(today, day) if month is None
             else _calendar_date(today, day, month, year))
    if found is None:
        r.invalid = True
    else:
        r.days.add(found)
        r.day_index.append(index)
    return end


def _number(toks: list[_Tok], i: int, r: _Reading, today: date, lex: _Lexicon) -> int | None:
    """A number not introduced by "at": a day of a month, or a time if marked as one."""
    t = toks[i]
    nxt = _kind(toks, i + 1)
    if nxt == _MONTH and 1 <= t.value <= 31:              # "5 de diciembre", "3 Dec"
        return _add_calendar(r, today, t.value, toks[i + 1].value, toks, i + 2, i)
    if nxt == _MONTH_PREFIX and _kind(toks, i + 2) == _NUM:     # "5 tháng 12"
        return _add_calendar(r, today, t.value, toks[i + 2].value, toks, i + 3, i)
    if nxt == _MONTH_MARK:                                  # 12月3日
        month = t.value
        if _kind(toks, i + 2) == _NUM and _kind(toks, i + 3) == _DAY_MARK:
            return _add_calendar(r, today, toks[i + 2].value, month, toks, i + 4, i)
        return i + 2        # a month alone: dateparser may know better
    if nxt == _DAY_MARK:                                    # 3号
        return _add_calendar(r, today, t.value, None, toks, i + 2, i)
    if t.ordinal:                                          # "the 5th"
        return _add_calendar(r, today, t.value, None, toks, i + 1, i)
    if nxt in (_HOUR, _PERIOD, _HALF, _QUARTER, _QUARTER_TO):  # "3pm", "15h", "3 de la tarde"
        return _clock(toks, i, r, local=False, digits_local=False)
    return None


def _clock(toks: list[_Tok], j: int, r: _Reading, *, local: bool,
           digits_local: bool) -> int | None:
    """A clock time starting at token j; record it and return the index after it."""
    t = toks[j]
    k = j + 1
    if t.kind == _DATE:
        hour, minute = t.parts[0], 0
        if _kind(toks, k) == _HOUR:
            k += 1
    elif t.kind in (_TIME, _DOT):
        hour, minute = t.parts
        local = False           # "saa 15:00" is a clock time
        if _kind(toks, k) == _HOUR:
            k += 1
    elif t.kind == _NUM and not t.ordinal and t.value <= 24:
        hour, minute = t.value, 0
        if t.digits and not digits_local:
            local = False
        if _kind(toks, k) == _HOUR:
            k += 1
            if _kind(toks, k) == _NUM and toks[k].value < 60:     # "3 giờ 30", "3点30分"
                minute = toks[k].value
                k += 1
                if _kind(toks, k) == _MINUTE:
                    k += 1
    else:
        return None
    if (t.kind == _DOT and k == j + 1 and _kind(toks, k) != _PERIOD
            and _kind(toks, j - 1) not in (_AT, _CLOCK)):
        return None             # "5.12" alone is more likely a date than a time
    kind = _kind(toks, k)
    if kind == _HALF:
        minute, k = 30, k + 1
    elif kind == _QUARTER:
        minute, k = 15, k + 1
    elif kind == _QUARTER_TO:
        hour, minute, k = hour - 1, 45, k + 1
    period: str | None = None
    if _kind(toks, k) == _PERIOD:
        period, k = toks[k].tag, k + 1
    else:
        # A time of day just before: "下午3点", "tomorrow afternoon at 3"
        for before in (j - 1, j - 2):
            if _kind(toks, before) == _PERIOD and (before == j - 1
                                                   or _kind(toks, j - 1) in (_AT, _CLOCK)):
                period = r.loose_periods.pop(before, toks[before].tag)
                break
    if period in ("am", "pm"):
        local = False           # "saa 3 pm" is a Western clock time
    r.clocks.append(_Clock(hour, minute, period, t.zero, local, j))
    return k


def _hour_of_day(c: _Clock, period: str | None, clock_offset: int) -> int:
    """The 24-hour hour meant by what was written."""
    hour = c.hour
    if c.local and 1 <= hour <= 12:
        hour = (hour + clock_offset - 1) % 12 + 1     # saa tisa (9) -> 3, saa sita (6) -> 12
    if period is None:
        # People book visits in the afternoon, not at 3 am: a bare 1-7 is pm.
        return hour + 12 if 1 <= hour <= 7 and not c.zero else hour
    if hour == 0 or hour > 12:
        return hour
    if period in ("am", "morning"):
        return 0 if hour == 12 and period == "am" else hour
    if period in ("pm", "afternoon"):
        return 12 if hour == 12 else hour + 12
    if period == "midday":
        return hour if hour >= 10 else hour + 12
    if period == "evening":
        return 0 if hour == 12 else hour + 12
    if period == "night":
        return 0 if hour == 12 else (hour if hour < 6 else hour + 12)
    return 0 if hour == 12 else hour      # midnight


def _nearest(index: int, candidates: Mapping[int, str]) -> str | None:
    """The time of day written closest to ``index``, if one is clearly closest."""
    if not candidates:
        return None
    ranked = sorted((abs(pos - index), kind) for pos, kind in candidates.items())
    if len(ranked) > 1 and ranked[0][0] == ranked[1][0] and ranked[0][1] != ranked[1][1]:
        return None
    return ranked[0][1]


def _settle(r: _Reading, now: datetime, zone: tzinfo) -> When | None:
    """Turn a reading into one answer, or None when there is none or more than one."""
    if r.invalid:
        return None
    times: set[tuple[int, int]] = set()
    for c in r.clocks:
        period = c.period if c.period is not None else _nearest(c.index, r.loose_periods)
        hour = _hour_of_day(c, period, r.clock_offset)
        if not (0 <= hour <= 23 and 0 <= c.minute <= 59):
            return None
        times.add((hour, c.minute))
    if len(r.days) > 1 or len(times) > 1:
        return None
    day = next(iter(r.days), None)
    clock = next(iter(times), None)
    if r.offset is not None:                            # "in 2 hours"
        if day is not None or clock is not None:
            return None
        later = (now.astimezone(UTC) + r.offset).astimezone(zone)
        return When(later.replace(second=0, microsecond=0), True)
    if clock is None:
        defaults = {pos: kind for pos, kind in r.loose_periods.items()
                    if kind in r.period_hours}
        if len(set(defaults.values())) > 1:
            # "toi ... chieu mai": take the time of day written next to the day.
            kind = _nearest(r.day_index[0], defaults) if r.day_index else None
            if kind is None:
                return None
            defaults = {0: kind}
        if defaults:
            clock = (r.period_hours[next(iter(defaults.values()))], 0)
    if day is None and clock is None:
        return None
    local_now = now.replace(tzinfo=None)
    if day is None:
        assert clock is not None
        wall = datetime.combine(local_now.date(), time(*clock))
        if wall <= local_now:
            wall += timedelta(days=1)
        return When(_localize(wall, zone), True)
    if clock is None:
        return When(_localize(datetime.combine(day, time()), zone), False)
    return When(_localize(datetime.combine(day, time(*clock)), zone), True)


def _localize(wall: datetime, zone: tzinfo) -> datetime:
    # A wall time in a spring-forward gap does not exist and one in a fall-back hour exists
    # twice; the round trip through UTC settles both on a real instant (02:30 -> 03:30).
    return wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


# --- dates ------------------------------------------------------------------------------

def _weekday_date(today: date, weekday: int, nexts: int) -> date:
    if nexts:
        monday = today - timedelta(days=today.weekday())
        return monday + timedelta(days=7 * nexts + weekday)
    ahead = (weekday - today.weekday()) % 7 or 7
    return today + timedelta(days=ahead)


def _calendar_date(today: date, day: int, month: int, year: int | None) -> date | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    if year is not None:
        if year < 100:
            year += 2000
        try:
            return date(year, month, day)
        except ValueError:
            return None
    for candidate_year in range(today.year, today.year + 5):     # 29 February may be years off
        try:
            found = date(candidate_year, month, day)
        except ValueError:
            continue
        if found >= today:
            return found
    return None


def _day_of_month(today: date, day: int) -> date | None:
    year, month = today.year, today.month
    for _ in range(3):
        try:
            found = date(year, month, day)
        except ValueError:
            found = None
        if found is not None and found >= today:
            return found
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _numeric_date(today: date, parts: tuple[int, ...], order: str) -> date | None:
    """3/12, 3/12/2026 or 2026-12-03 in the language's order, else the other order."""
    if len(parts) == 3 and order == "ymd":
        return _calendar_date(today, parts[2], parts[1], parts[0])
    year = parts[2] if len(parts) == 3 else None
    first, second = parts[0], parts[1]
    day, month = (second, first) if order in ("mdy", "ymd") else (first, second)
    found = _calendar_date(today, day, month, year)
    if found is None and month > 12:
        found = _calendar_date(today, month, day, year)
    return found


# --- dateparser -------------------------------------------------------------------------

# dateparser copies the base's time onto most day-only results; an odd microsecond on the
# base shows whether the reply had a time of its own.
_SENTINEL_US: Final = 654_321


def _dateparser_when(text: str, lex: _Lexicon, now: datetime, zone: tzinfo, *,
                     timeish: bool) -> When | None:
    from dateparser.date import DateDataParser  # heavy import; only on this slow path

    base = now.replace(tzinfo=None, second=0, microsecond=_SENTINEL_US)
    parser = DateDataParser(languages=[lex.dateparser_lang], settings={
        "RELATIVE_BASE": base, "PREFER_DATES_FROM": "future",
        "RETURN_AS_TIMEZONE_AWARE": False})
    data = parser.get_date_data(text)
    found = data.date_obj
    # A week or a month ("next week", "December") is not an answer to "when?".
    if not isinstance(found, datetime) or data.period not in ("day", "time"):
        return None
    found = found.replace(tzinfo=None)
    # Some day-only results come back at midnight instead of the base's time.
    has_time = found.microsecond != _SENTINEL_US and (found.time() != time() or timeish)
    if not has_time:
        found = datetime.combine(found.date(), time())
    today = base.date()
    if not today <= found.date() <= today + timedelta(days=731):
        return None
    return When(_localize(found.replace(microsecond=0), zone), has_time)
