"""Red-flag phrases: words in any message that mean a participant may need help now.

"chest pain", "no puedo respirar", "quiero morir", "我想死": the shell looks for them in
every inbound message, in every supported language whatever the participant's, and in any
conversation state, and raises an escalation for each reason found. The phrases, with the
reason code and severity they raise, live in ``translations/redflags/<lang>.yaml``.

Negation follows NegEx (Chapman et al., 2001): a negation cue ("no", "I don't have",
"sin", "没有") shortly before a phrase, in the same clause, cancels it ("no chest pain");
pseudo-negations ("not sure", "no sé") look like cues but are not; contrast words ("but",
"pero") end a cue's reach. Cues are taken from the language of the phrase that matched, so
Swahili "si" (not) never cancels Spanish "si tengo dolor de pecho". Phrases that carry their
own negation ("can't breathe", "no puedo respirar") are marked ``negatable: false``: a "no"
before them ("No I can't breathe") is an answer, not a denial. When in doubt the detector
errs towards raising: a navigator's call costs less than a missed emergency.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from ..languages import SUPPORTED, primary
from .normalize import Tokens, tokenize
from .phrases import Match, PhraseTable, sub
from .words import LanguageWords, WordsError, load_words, translations_dir

SEVERITIES = ("urgent", "high", "routine")
_RANK = {name: i for i, name in enumerate(reversed(SEVERITIES))}
#: Intervening tokens a negation cue may reach across ("not had any chest pain": 2).
DEFAULT_WINDOW = 3
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_Cue = Literal["negation", "pseudo", "contrast"]


class RedFlagsError(WordsError):
    """A red-flag file is missing or malformed."""


@dataclass(frozen=True, slots=True)
class RedFlag:
    """A reason found in a message, with the severity it raises."""

    reason: str
    severity: str
    language: str  # the language of the phrase that matched


@dataclass(frozen=True, slots=True)
class _Phrase:
    reason: str
    severity: str
    language: str
    negatable: bool


@dataclass(frozen=True, slots=True)
class LanguageFlags:
    """The contents of one ``translations/redflags/<lang>.yaml``."""

    lang: str
    groups: tuple[tuple[str, str, bool, tuple[str, ...]], ...]  # reason, severity, negatable
    negation: tuple[str, ...]
    pseudo: tuple[str, ...]
    contrast: tuple[str, ...]
    window: int
    unaccented_ambiguous: frozenset[str]

    @property
    def reasons(self) -> frozenset[str]:
        return frozenset(g[0] for g in self.groups)


def load_flags(lang: str) -> LanguageFlags:
    """The red-flag phrases of ``lang``; raises ``RedFlagsError`` if there are none."""
    return _load(primary(lang), str(translations_dir()))


def warm_up(langs: Iterable[str] = SUPPORTED) -> None:
    """Build the tables now (tens of milliseconds each), not in a participant's request."""
    for lang in langs:
        _table(primary(lang))
        _cues(primary(lang))


def clear_cache() -> None:
    _load.cache_clear()
    _table.cache_clear()
    _cues.cache_clear()


_TOP_KEYS = frozenset({"language", "flags", "negation", "unaccented_ambiguous"})
_GROUP_KEYS = frozenset({"reason", "severity", "negatable", "phrases"})
_NEGATION_KEYS = frozenset({"window", "before", "pseudo", "contrast"})


@lru_cache(maxsize=32)
def _load(lang: str, directory: str) -> LanguageFlags:
    path = Path(directory) / "redflags" / f"{lang}.yaml"
    if not lang or not path.is_file():
        raise RedFlagsError(f"no red-flag phrases for language {lang!r}: expected {path}")
    with path.open(encoding="utf-8") as fh:
        # libyaml's safe loader when present: the nine files load in a tenth of the time.
        data: Any = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    return parse_flags(lang, data, str(path))


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RedFlagsError(f"{where}: expected a list of phrases")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise RedFlagsError(f"{where}[{i}]: {item!r} is not a phrase; put it in quotes")
        out.append(item.strip())
    return tuple(out)


def _unknown(section: Mapping[Any, Any], known: frozenset[str], where: str) -> None:
    extra = set(map(str, section)) - known
    if extra:
        raise RedFlagsError(f"{where}: unknown keys {sorted(extra)}")


def parse_flags(lang: str, data: Any, path: str = "<redflags>") -> LanguageFlags:
    """Check the shape of a red-flag file's data; every mistake is a ``RedFlagsError``."""
    if not isinstance(data, dict):
        raise RedFlagsError(f"{path}: expected a mapping at the top level")
    _unknown(data, _TOP_KEYS, path)
    if data.get("language", lang) != lang:
        raise RedFlagsError(f"{path}: says language {data.get('language')!r}, expected {lang!r}")
    raw_groups = data.get("flags")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise RedFlagsError(f"{path}: `flags` must list groups of phrases")
    groups: list[tuple[str, str, bool, tuple[str, ...]]] = []
    for i, group in enumerate(raw_groups):
        where = f"{path}: flags[{i}]"
        if not isinstance(group, dict):
            raise RedFlagsError(f"{where}: expected reason, severity and phrases")
        _unknown(group, _GROUP_KEYS, where)
        reason, severity = group.get("reason"), group.get("severity")
        if not isinstance(reason, str) or not _REASON.match(reason):
            raise RedFlagsError(f"{where}: reason {reason!r} must be a code like chest_pain")
        if severity not in SEVERITIES:
            raise RedFlagsError(f"{where}: severity {severity!r} must be one of "
                                f"{', '.join(SEVERITIES)}")
        negatable = group.get("negatable", True)
        if not isinstance(negatable, bool):
            raise RedFlagsError(f"{where}: negatable must be true or false")
        phrases = _strings(group.get("phrases"), f"{where}.phrases")
        if not phrases:
            raise RedFlagsError(f"{where}: no phrases")
        groups.append((reason, str(severity), negatable, phrases))
    negation = data.get("negation") or {}
    if not isinstance(negation, dict):
        raise RedFlagsError(f"{path}: negation must be a mapping")
    _unknown(negation, _NEGATION_KEYS, f"{path}: negation")
    window = negation.get("window", DEFAULT_WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or not 0 <= window <= 8:
        raise RedFlagsError(f"{path}: negation.window must be a whole number from 0 to 8")
    return LanguageFlags(
        lang=lang,
        groups=tuple(groups),
        negation=_strings(negation.get("before"), f"{path}: negation.before"),
        pseudo=_strings(negation.get("pseudo"), f"{path}: negation.pseudo"),
        contrast=_strings(negation.get("contrast"), f"{path}: negation.contrast"),
        window=window,
        unaccented_ambiguous=frozenset(
            _strings(data.get("unaccented_ambiguous"), f"{path}: unaccented_ambiguous")),
    )


def _rules(lang: str, flags: LanguageFlags) -> LanguageWords:
    """The language's accent and clitic rules, with this file's ambiguous spellings added."""
    try:
        words = load_words(lang)
    except WordsError:
        words = LanguageWords(lang=lang)
    return dataclasses.replace(
        words, unaccented_ambiguous=words.unaccented_ambiguous | flags.unaccented_ambiguous)


@lru_cache(maxsize=16)
def _table(lang: str) -> PhraseTable[_Phrase]:
    """Every language's phrases in one table, the participant's language first (its
    reading wins where a phrase means different things in two languages)."""
    table: PhraseTable[_Phrase] = PhraseTable()
    order = dict.fromkeys((lang, *SUPPORTED)) if lang in SUPPORTED else dict.fromkeys(SUPPORTED)
    for code in order:
        flags = load_flags(code)
        rules = _rules(code, flags)
        for reason, severity, negatable, phrases in flags.groups:
            table.add_all(phrases, _Phrase(reason, severity, code, negatable), rules)
    return table


@lru_cache(maxsize=16)
def _cues(lang: str) -> tuple[PhraseTable[_Cue], int]:
    flags = load_flags(lang)
    rules = _rules(lang, flags)
    table: PhraseTable[_Cue] = PhraseTable()
    # Pseudo-negations first: "not sure" must not be read as the cue "not".
    table.add_all(flags.pseudo, "pseudo", rules)
    table.add_all(flags.contrast, "contrast", rules)
    table.add_all(flags.negation, "negation", rules)
    return table, flags.window


def _negated(tokens: Tokens, found: Match[_Phrase]) -> bool:
    """A negation cue before the phrase, in its clause, with no contrast in between."""
    if not found.value.negatable:
        return False
    cues, window = _cues(found.value.language)
    clause = max((b for b in tokens.breaks if b <= found.start), default=0)
    before = sub(tokens, clause, found.start)
    negated_until: int | None = None  # where the last cue in force ends
    for cue in cues.scan(before):
        negated_until = cue.end if cue.value == "negation" else None
    return negated_until is not None and len(before.folded) - negated_until <= window


def detect_red_flags(text: str, lang: str) -> tuple[RedFlag, ...]:
    """The red flags in ``text``: one per reason at its highest severity, most severe first.

    ``lang`` is the participant's language; phrases of every supported language count.
    """
    tokens = tokenize(text)
    if not tokens.folded:
        return ()
    best: dict[str, RedFlag] = {}
    for found in _table(primary(lang)).scan(tokens):
        if _negated(tokens, found):
            continue
        phrase = found.value
        held = best.get(phrase.reason)
        if held is None or _RANK[phrase.severity] > _RANK[held.severity]:
            best[phrase.reason] = RedFlag(phrase.reason, phrase.severity, phrase.language)
    return tuple(sorted(best.values(), key=lambda f: (-_RANK[f.severity], f.reason)))
