"""Gettext catalogs and babel formatting behind the engine's `Localizer` port.

Catalogs live in `translations/<lang>/LC_MESSAGES/messages.po` (compiled to `.mo` by
`bot translations compile`). Unlike babel's `Translations.load`, a missing catalog is an
error here, never a silent fall-back to the source language.
"""

from __future__ import annotations

import functools
import gettext
import hashlib
import os
from datetime import datetime
from pathlib import Path

from babel import Locale
from babel.dates import format_skeleton
from babel.messages.pofile import read_po

from .engine.languages import SUPPORTED, primary

SOURCE_LANGUAGE = "en"
DOMAIN = "messages"


class CatalogMissing(LookupError):
    pass


def translations_dir() -> Path:
    env = os.environ.get("BOT_TRANSLATIONS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "translations"


def negotiate(requested: str | None, default: str = SOURCE_LANGUAGE) -> str:
    """`es-MX`, `es_MX` and `es` give `es`; an unsupported language gives the study default."""
    lang = primary(requested or "")
    return lang if lang in SUPPORTED else default


class CatalogLocalizer:
    """Translations for one language from its gettext catalog, dates worded by babel."""

    def __init__(self, language: str, catalog: gettext.NullTranslations, revision: str) -> None:
        self._language = language
        self._catalog = catalog
        self._revision = revision
        self._locale = Locale.parse(language)

    @property
    def language(self) -> str:
        return self._language

    @property
    def revision(self) -> str:
        return self._revision

    def translate(self, context: str, source: str) -> str:
        return self._catalog.pgettext(context, source)

    def format_when(self, when: datetime, has_time: bool) -> str:
        day = format_skeleton("MMMMEd", when, locale=self._locale)
        if not has_time:
            return day
        return f"{day}, {format_skeleton('Hm', when, locale=self._locale)}"


def _po_translations(path: Path) -> gettext.NullTranslations:
    """Build a gettext object from a `.po` file (used when no `.mo` has been compiled)."""
    with path.open("rb") as fh:
        catalog = read_po(fh)
    trans = gettext.NullTranslations()
    table: dict[str, str] = {}
    for msg in catalog:
        if not msg.id or not msg.string or msg.fuzzy or isinstance(msg.id, tuple):
            continue
        key = f"{msg.context}\x04{msg.id}" if msg.context else str(msg.id)
        table[key] = str(msg.string)

    def pgettext(context: str, message: str) -> str:
        return table.get(f"{context}\x04{message}", message)

    trans.pgettext = pgettext  # type: ignore[method-assign]
    return trans


@functools.lru_cache(maxsize=32)
def localizer(language: str) -> CatalogLocalizer:
    lang = negotiate(language)
    if lang == SOURCE_LANGUAGE:
        return CatalogLocalizer(lang, gettext.NullTranslations(), "source")
    folder = translations_dir() / lang / "LC_MESSAGES"
    mo, po = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fh:
            data = fh.read()
        catalog: gettext.NullTranslations = gettext.GNUTranslations(__import__("io").BytesIO(data))
    elif po.exists():
        data = po.read_bytes()
        catalog = _po_translations(po)
    else:
        raise CatalogMissing(f"no catalog for language `{lang}` in {folder}")
    revision = hashlib.sha256(data).hexdigest()[:12]
    return CatalogLocalizer(lang, catalog, revision)


def catalogs(language: str) -> CatalogLocalizer:
    """The engine's `Catalogs` callable."""
    return localizer(language)
