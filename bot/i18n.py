"""Gettext catalogs and babel formatting behind the engine's `Localizer` port.

Catalogs live in `translations/<lang>/LC_MESSAGES/messages.po` (compiled to `.mo` by
`bot translations compile`). Unlike babel's `Translations.load`, a missing catalog is an
error here, never a silent fall-back to the source language.

Dates are worded by babel in the participant's language, with full day and month names in
the order the language uses ("martes, 3 de marzo, 15:00", "12月1日星期二 15:00"). Where
CLDR has no calendar of a language's own and babel borrows another's (Haitian Creole is
formatted in French), the names come from `translations/calendar/<lang>.yaml`.
"""

from __future__ import annotations

import functools
import gettext
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from babel import Locale
from babel.core import get_global
from babel.dates import format_datetime, match_skeleton, tokenize_pattern
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from .engine.languages import SUPPORTED, primary
from .engine.understand.words import translations_dir as translations_dir  # one setting

SOURCE_LANGUAGE = "en"
DOMAIN = "messages"
CALENDAR_DIR = "calendar"

#: Full weekday, day, full month: each language orders them (and adds words) its own way.
DAY_SKELETON = "MMMMEEEEd"
_PLAIN_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


class CatalogMissing(LookupError):
    pass


class CalendarMissing(CatalogMissing):
    """A language whose day and month names babel does not have lacks a usable names file."""


def negotiate(requested: str | None, default: str = SOURCE_LANGUAGE) -> str:
    """The participant's language if supported, else the study default, else the source.

    Tags are reduced to their language: `es-MX`, `es_MX` and `es` give `es`; `pt-BR` gives
    `pt`. (babel's `negotiate_locale(['es'], ['es_MX'])` is None, so it is not used.) An
    empty `default` is returned as it is, for callers that must tell "unsupported" apart.
    """
    lang = primary(requested or "")
    if lang in SUPPORTED:
        return lang
    fallback = primary(default)
    return fallback if fallback in SUPPORTED or not fallback else SOURCE_LANGUAGE


def borrows_calendar(language: str) -> bool:
    """True if CLDR formats this language with another language's day and month names."""
    parent = str(get_global("parent_exceptions").get(language) or "")
    return bool(parent) and primary(parent) != language


@dataclass(frozen=True, slots=True)
class CalendarNames:
    weekdays: tuple[str, ...]  # Monday first, as datetime.weekday() counts
    months: tuple[str, ...]  # January first


def read_calendar(path: Path) -> CalendarNames:
    """Read a day and month names file; ValueError says what is wrong with it."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("it must have `weekdays:` and `months:` lists")
    out: list[tuple[str, ...]] = []
    for key, count in (("weekdays", 7), ("months", 12)):
        names = data.get(key)
        if not isinstance(names, list) or len(names) != count \
                or not all(isinstance(n, str) and n.strip() for n in names):
            raise ValueError(f"`{key}` must list {count} names")
        out.append(tuple(n.strip() for n in names))
    return CalendarNames(*out)


def calendar_names(language: str, directory: Path) -> CalendarNames | None:
    """Names from the calendar file if babel lacks the language's own; else None."""
    if not borrows_calendar(language):
        return None
    path = directory / CALENDAR_DIR / f"{language}.yaml"
    try:
        return read_calendar(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise CalendarMissing(f"day and month names for `{language}` ({path}): {exc}") from None


def _day_pattern(locale: Locale, names: CalendarNames | None, when: datetime) -> str:
    """The locale's pattern for weekday + day + month, with full names.

    Locales list few skeletons ("MMMEd" in English), and babel's `format_skeleton` keeps the
    widths of the pattern it matched ("Tue, Mar 3"); widening the fields afterwards is what
    ICU's pattern generator does for the full names ("Tuesday, March 3"). Names from a
    calendar file go in as literal text.
    """
    skeleton = match_skeleton(DAY_SKELETON, locale.datetime_skeletons) or "MMMEd"
    parts: list[tuple[bool, str]] = []  # (is literal text, text or pattern field)
    for kind, value in tokenize_pattern(locale.datetime_skeletons[skeleton].pattern):
        if kind == "chars":
            assert isinstance(value, str)
            parts.append((True, value))
            continue
        assert isinstance(value, tuple)
        letter, width = str(value[0]), int(value[1])
        if letter == "E" or (letter in "ec" and width >= 3):
            parts.append((True, names.weekdays[when.weekday()]) if names else (False, "EEEE"))
        elif letter in "ML" and width >= 3:
            parts.append((True, names.months[when.month - 1]) if names else (False, "MMMM"))
        else:
            parts.append((False, letter * width))
    out: list[str] = []
    literal = ""
    for is_text, text in parts + [(False, "")]:
        if is_text:
            literal += text  # quoted as one run: "'a''b'" would read as "a'b"
            continue
        if literal:
            out.append("'" + literal.replace("'", "''") + "'")
            literal = ""
        out.append(text)
    return "".join(out)


class CatalogLocalizer:
    """Translations for one language from its gettext catalog, dates worded by babel."""

    def __init__(self, language: str, catalog: gettext.NullTranslations, revision: str,
                 calendar: CalendarNames | None = None) -> None:
        self._language = language
        self._catalog = catalog
        self._revision = revision
        self._locale = Locale.parse(language)
        self._calendar = calendar

    @property
    def language(self) -> str:
        return self._language

    @property
    def revision(self) -> str:
        return self._revision

    def translate(self, context: str, source: str) -> str:
        return self._catalog.pgettext(context, source)

    def ngettext(self, context: str, singular: str, plural: str, n: int) -> str:
        """The plural form for `n` (Arabic has six) under the catalog's Plural-Forms rule."""
        return self._catalog.npgettext(context, singular, plural, n)

    def format_number(self, number: float) -> str:
        return format_decimal(number, locale=self._locale).translate(_PLAIN_SPACES)

    def format_when(self, when: datetime, has_time: bool) -> str:
        """`when` in words, in its own time zone (the engine passes participant-local times).

        babel reads a naive datetime as UTC and converts an aware one only if asked to, so
        the wall-clock time the participant sees is kept either way.
        """
        day = format_datetime(when, _day_pattern(self._locale, self._calendar, when),
                              tzinfo=when.tzinfo, locale=self._locale)
        if not has_time:
            return day.translate(_PLAIN_SPACES)
        # The clock people read in that language: "3:00 PM" in English, "15:00" in French.
        time_pattern = self._locale.time_formats["short"].pattern
        time = format_datetime(when, time_pattern, tzinfo=when.tzinfo, locale=self._locale)
        glue = str(self._locale.datetime_formats["medium"]).replace("'", "")
        # CLDR puts narrow no-break spaces in times ("9:30\u202fAM"): outside GSM-7, one
        # would make an English SMS UCS-2 and double its segments. A plain space reads the same.
        return glue.replace("{0}", time).replace("{1}", day).translate(_PLAIN_SPACES)


def compile_po(data: bytes, language: str) -> bytes:
    """`.po` bytes to `.mo` bytes; fuzzy and untranslated entries are left out."""
    catalog = read_po(io.BytesIO(data), locale=language)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def catalog_paths(language: str, directory: Path | None = None) -> tuple[Path, Path]:
    folder = (directory or translations_dir()) / language / "LC_MESSAGES"
    return folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"


@functools.lru_cache(maxsize=64)
def _load(language: str, directory: str) -> CatalogLocalizer:
    base = Path(directory)
    calendar = calendar_names(language, base)
    if language == SOURCE_LANGUAGE:
        return CatalogLocalizer(language, gettext.NullTranslations(), "source", calendar)
    po, mo = catalog_paths(language, base)
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        data = mo.read_bytes()
    elif po.exists():
        # Not compiled yet (or edited since): compile in memory, so plurals and contexts
        # behave exactly as they will from the `.mo`, and the revision is the same.
        data = compile_po(po.read_bytes(), language)
    else:
        raise CatalogMissing(f"no catalog for language `{language}` in {po.parent}")
    revision = hashlib.sha256(data).hexdigest()[:12]
    return CatalogLocalizer(language, gettext.GNUTranslations(io.BytesIO(data)), revision,
                            calendar)


def localizer(language: str, default: str = SOURCE_LANGUAGE) -> CatalogLocalizer:
    """The localizer for a participant's language (see `negotiate`); cached per folder."""
    return _load(negotiate(language, default), str(translations_dir()))


def clear_cache() -> None:
    """Forget loaded catalogs (after `bot translations compile`, or in tests)."""
    _load.cache_clear()


def catalogs(language: str) -> CatalogLocalizer:
    """The engine's `Catalogs` callable."""
    return localizer(language)

