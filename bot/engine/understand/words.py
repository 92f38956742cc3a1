"""Per-language word lists for the reply parsers, read from ``translations/words/<lang>.yaml``.

The YAML files belong to translators; each starts with a comment explaining its keys. This
module only checks their shape and turns them into typed, immutable values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ..languages import primary


class WordsError(LookupError):
    """A words file is missing or malformed."""


@dataclass(frozen=True, slots=True)
class LanguageWords:
    """The contents of one ``<lang>.yaml``; see the file header for what each list means."""

    lang: str
    accent_sensitive: bool = False
    unaccented_ambiguous: frozenset[str] = frozenset()
    clitics: tuple[str, ...] = ()
    yes_words: tuple[str, ...] = ()
    no_words: tuple[str, ...] = ()
    yes_alone: tuple[str, ...] = ()
    no_alone: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()
    numbers: Mapping[int, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    number_alone: tuple[str, ...] = ()
    number_ignore: tuple[str, ...] = ()
    number_compounds: tuple[str, ...] = ()
    scale: tuple[str, ...] = ()
    choice_words: tuple[str, ...] = ()
    connectors: tuple[str, ...] = ()
    letters: tuple[str, ...] = ()
    negations: tuple[str, ...] = ()
    # Option value ("severe") or one question's option ("flow:step:severe") -> words for it.
    choice_synonyms: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    stop: tuple[str, ...] = ()
    stop_phrases: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    start_phrases: tuple[str, ...] = ()
    help: tuple[str, ...] = ()
    language_names: tuple[str, ...] = ()
    language_prefix: tuple[str, ...] = ()
    filler: tuple[str, ...] = ()


#: The setting naming the translations folder; the older name is still honoured.
TRANSLATIONS_ENV = ("TRANSLATIONS_DIR", "BOT_TRANSLATIONS_DIR")
SHIPPED_TRANSLATIONS = Path(__file__).resolve().parents[3] / "translations"


def configured_translations_dir() -> Path | None:
    """``$TRANSLATIONS_DIR`` (or its older name ``$BOT_TRANSLATIONS_DIR``), if set."""
    for name in TRANSLATIONS_ENV:
        configured = os.environ.get(name)
        if configured:
            return Path(configured)
    return None


def translations_dir() -> Path:
    """Where catalogs, word lists and date words are read: the configured folder, else the
    project's ``translations/``. Read on every call (the caches are keyed by folder), so
    every loader follows the one setting."""
    return configured_translations_dir() or SHIPPED_TRANSLATIONS


def load_words(lang: str) -> LanguageWords:
    """The word lists for ``lang`` ("es", "es-MX"); raises ``WordsError`` if there are none."""
    return _load(primary(lang), str(translations_dir()))


def clear_cache() -> None:
    """Forget loaded files (after editing them, or in tests that change the directory)."""
    _load.cache_clear()
    _synonyms.cache_clear()


def choice_synonyms(lang: str, value: str, flow: str = "", step: str = "") -> tuple[str, ...]:
    """Words that pick the option ``value`` of question ``flow``:``step``, from ``choice_synonyms``
    in the words of ``lang`` and then of English.

    An entry for the question itself (``<flow>:<step>:<value>``) replaces the entry shared by
    every option called ``value``. English counts in every language, as the flows' own synonyms
    (written in English) do.
    """
    return _synonyms(primary(lang), value, flow, step, str(translations_dir()))


@lru_cache(maxsize=1024)
def _synonyms(lang: str, value: str, flow: str, step: str, directory: str) -> tuple[str, ...]:
    found: list[str] = []
    for code in dict.fromkeys((lang, "en")):
        table = _load(code, directory).choice_synonyms
        own = table.get(f"{flow}:{step}:{value}") if flow and step else None
        found.extend(own if own is not None else table.get(value, ()))
    return tuple(dict.fromkeys(found))


@lru_cache(maxsize=64)
def _load(lang: str, directory: str) -> LanguageWords:
    path = Path(directory) / "words" / f"{lang}.yaml"
    if not lang or not path.is_file():
        raise WordsError(f"no word list for language {lang!r}: expected {path}")
    with path.open(encoding="utf-8") as fh:
        data: Any = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise WordsError(f"{path}: expected a mapping at the top level")
    return _parse(lang, data, path)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WordsError(f"{where}: expected a list of words")
    out: list[str] = []
    for i, item in enumerate(value):
        # A bare no/yes/on/off in YAML is a boolean: tell the translator to quote it.
        if not isinstance(item, str) or not item.strip():
            raise WordsError(f"{where}[{i}]: {item!r} is not a word; put words in quotes")
        out.append(item.strip())
    return tuple(out)


# Known keys, so that a misspelt key is an error rather than a silently ignored list.
_KEYS: dict[str, frozenset[str]] = {
    "": frozenset(
        {
            "language",
            "accent_sensitive",
            "unaccented_ambiguous",
            "clitics",
            "yes_no",
            "numbers",
            "choice",
            "keywords",
            "filler",
            "choice_synonyms",
        }
    ),
    "yes_no": frozenset({"yes_words", "no_words", "yes_alone", "no_alone", "unsure"}),
    "numbers": frozenset({"words", "compounds", "alone", "ignore", "scale"}),
    "choice": frozenset({"words", "connectors", "letters", "negations"}),
    "keywords": frozenset(
        {
            "stop",
            "stop_phrases",
            "start",
            "start_phrases",
            "help",
            "language_names",
            "language_prefix",
        }
    ),
}


def _check_keys(section: Mapping[str, Any], name: str, path: Path) -> None:
    unknown = set(map(str, section)) - _KEYS[name]
    if unknown:
        where = f"{name}: " if name else ""
        raise WordsError(f"{path}: {where}unknown keys {sorted(unknown)}")


def _section(data: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise WordsError(f"{path}: {key} must be a mapping")
    _check_keys(value, key, path)
    return value


def _choice_synonyms(value: Any, path: Path) -> Mapping[str, tuple[str, ...]]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise WordsError(f"{path}: choice_synonyms must map option values to lists of words")
    table: dict[str, tuple[str, ...]] = {}
    for key, words in value.items():
        # A bare yes/no/on/off key is a boolean in YAML, a bare number an int.
        if not isinstance(key, str) or not key.strip():
            raise WordsError(f"{path}: choice_synonyms key {key!r} is not an option value; "
                             "put it in quotes")
        parts = [part.strip() for part in key.split(":")]
        if len(parts) == 3 and parts[2].startswith("choice."):
            parts[2] = parts[2][len("choice.") :]  # the option's msgctxt in the catalog
        if len(parts) not in (1, 3) or not all(parts):
            raise WordsError(f"{path}: choice_synonyms key {key!r}: expected an option value "
                             "(severe) or <flow>:<step>:<value> (daily_checkin:meds_why:other)")
        table[":".join(parts)] = _strings(words, f"{path}: choice_synonyms.{key}")
    return MappingProxyType(table)


def _parse(lang: str, data: Mapping[str, Any], path: Path) -> LanguageWords:
    _check_keys(data, "", path)
    if data.get("language", lang) != lang:
        raise WordsError(f"{path}: says language {data.get('language')!r}, expected {lang!r}")
    yes_no = _section(data, "yes_no", path)
    numbers = _section(data, "numbers", path)
    choice = _section(data, "choice", path)
    keywords = _section(data, "keywords", path)

    def strings(section: Mapping[str, Any], name: str, key: str) -> tuple[str, ...]:
        return _strings(section.get(key), f"{path}: {name}.{key}" if name else f"{path}: {key}")

    number_words: dict[int, tuple[str, ...]] = {}
    raw_words = numbers.get("words") or {}
    if not isinstance(raw_words, dict):
        raise WordsError(f"{path}: numbers.words must map numbers to lists of words")
    for key, spellings in raw_words.items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise WordsError(f"{path}: numbers.words key {key!r} is not a number") from None
        number_words[value] = _strings(spellings, f"{path}: numbers.words.{key}")

    words = LanguageWords(
        lang=lang,
        accent_sensitive=bool(data.get("accent_sensitive", False)),
        unaccented_ambiguous=frozenset(strings(data, "", "unaccented_ambiguous")),
        clitics=strings(data, "", "clitics"),
        yes_words=strings(yes_no, "yes_no", "yes_words"),
        no_words=strings(yes_no, "yes_no", "no_words"),
        yes_alone=strings(yes_no, "yes_no", "yes_alone"),
        no_alone=strings(yes_no, "yes_no", "no_alone"),
        unsure=strings(yes_no, "yes_no", "unsure"),
        numbers=MappingProxyType(number_words),
        number_alone=strings(numbers, "numbers", "alone"),
        number_ignore=strings(numbers, "numbers", "ignore"),
        number_compounds=strings(numbers, "numbers", "compounds"),
        scale=strings(numbers, "numbers", "scale"),
        choice_words=strings(choice, "choice", "words"),
        connectors=strings(choice, "choice", "connectors"),
        letters=strings(choice, "choice", "letters"),
        negations=strings(choice, "choice", "negations"),
        choice_synonyms=_choice_synonyms(data.get("choice_synonyms"), path),
        stop=strings(keywords, "keywords", "stop"),
        stop_phrases=strings(keywords, "keywords", "stop_phrases"),
        start=strings(keywords, "keywords", "start"),
        start_phrases=strings(keywords, "keywords", "start_phrases"),
        help=strings(keywords, "keywords", "help"),
        language_names=strings(keywords, "keywords", "language_names"),
        language_prefix=strings(keywords, "keywords", "language_prefix"),
        filler=strings(data, "", "filler"),
    )
    missing = [
        name
        for name, present in (
            ("yes_no.yes_words", words.yes_words),
            ("yes_no.no_words", words.no_words),
            ("numbers.words", words.numbers),
            ("keywords.stop", words.stop),
            ("keywords.help", words.help),
            ("keywords.language_names", words.language_names),
        )
        if not present
    ]
    if missing:
        raise WordsError(f"{path}: missing or empty: {', '.join(missing)}")
    return words
