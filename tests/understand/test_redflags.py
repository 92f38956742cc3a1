"""The red-flag detector: file checks, every shipped phrase, negation rules, everyday replies."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.engine.languages import SUPPORTED
from bot.engine.understand import redflags, words
from bot.engine.understand.redflags import (
    RedFlag,
    RedFlagsError,
    detect_red_flags,
    load_flags,
    parse_flags,
)

REASONS = {"chest_pain", "breathing_difficulty", "self_harm", "severe_bleeding", "fainting"}


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_language_covers_every_reason(lang: str) -> None:
    assert load_flags(lang).reasons == REASONS


@pytest.mark.parametrize("lang", SUPPORTED)
def test_each_phrase_alone_raises_its_reason(lang: str) -> None:
    flags = load_flags(lang)
    missed = []
    for reason, _severity, _negatable, phrases in flags.groups:
        for phrase in phrases:
            found = {f.reason for f in detect_red_flags(phrase, lang)}
            if reason not in found:
                missed.append((phrase, reason, found))
    assert missed == []


@pytest.mark.parametrize("lang", SUPPORTED)
def test_negatable_phrases_are_cancelled_by_the_first_cue(lang: str) -> None:
    flags = load_flags(lang)
    cue = flags.negation[0]
    kept = []
    for reason, _severity, negatable, phrases in flags.groups:
        if not negatable:
            continue
        for phrase in phrases:
            found = {f.reason for f in detect_red_flags(f"{cue} {phrase}", lang)}
            if reason in found:
                kept.append(phrase)
    assert kept == []


def test_one_flag_per_reason_at_its_highest_severity() -> None:
    flags = detect_red_flags("short of breath, now I can't breathe", "en")
    assert flags == (RedFlag("breathing_difficulty", "urgent", "en"),)
    high_only = detect_red_flags("a bit short of breath", "en")
    assert high_only == (RedFlag("breathing_difficulty", "high", "en"),)


def test_most_severe_first() -> None:
    flags = detect_red_flags("short of breath and chest pain", "en")
    assert [f.severity for f in flags] == ["urgent", "high"]


def test_cues_come_from_the_language_of_the_phrase() -> None:
    # Swahili "si" and Creole "pa" mean "not", but not in a Spanish sentence.
    assert detect_red_flags("si tengo dolor de pecho", "sw")[0].reason == "chest_pain"
    # English cue before an English phrase, whatever the participant's language.
    assert detect_red_flags("no chest pain", "es") == ()


def test_a_clause_break_ends_a_negation() -> None:
    assert detect_red_flags("No. Chest pain.", "en")[0].reason == "chest_pain"
    assert detect_red_flags("No chest pain.", "en") == ()


def test_a_cue_far_before_the_phrase_does_not_reach_it() -> None:
    assert detect_red_flags("I could not sleep at all because of the chest pain", "en")


def test_empty_and_emoji_only() -> None:
    assert detect_red_flags("", "en") == ()
    assert detect_red_flags("🙂👍", "ar") == ()


def test_unsupported_language_still_checks_every_language() -> None:
    assert detect_red_flags("no puedo respirar", "de")[0].reason == "breathing_difficulty"


def _corpus_replies() -> Iterator[tuple[str, str]]:
    """Replies from the reply-understanding corpora: everyday answers, none alarming."""
    for lang in SUPPORTED:
        module = importlib.import_module(f".test_{lang}_corpus", __package__)
        for name in ("YES_NO", "YES_NO_UNCLEAR", "NUMBERS", "NUMBERS_UNCLEAR", "CHOICES",
                     "CHOICES_UNCLEAR", "MULTI", "MULTI_UNCLEAR"):
            for item in getattr(module, name, []):
                text = item[0] if isinstance(item, tuple) else item
                if isinstance(text, str):
                    yield lang, text


def test_everyday_replies_raise_nothing() -> None:
    raised = [(lang, text, detect_red_flags(text, lang)) for lang, text in _corpus_replies()
              if detect_red_flags(text, lang)]
    assert raised == []


# ---- the files --------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "language": "en",
    "flags": [{"reason": "chest_pain", "severity": "urgent", "phrases": ["chest pain"]}],
    "negation": {"before": ["no"], "pseudo": ["not sure"], "contrast": ["but"]},
}


def test_a_good_file_parses() -> None:
    flags = parse_flags("en", GOOD)
    assert flags.reasons == {"chest_pain"} and flags.window == redflags.DEFAULT_WINDOW


@pytest.mark.parametrize(("change", "message"), [
    ({"flags": []}, "`flags` must list"),
    ({"flags": [{"reason": "Chest Pain", "severity": "urgent", "phrases": ["x"]}]}, "reason"),
    ({"flags": [{"reason": "x", "severity": "critical", "phrases": ["x"]}]}, "severity"),
    ({"flags": [{"reason": "x", "severity": "high", "phrases": []}]}, "no phrases"),
    ({"flags": [{"reason": "x", "severity": "high", "phrases": [True]}]}, "quotes"),
    ({"flags": [{"reason": "x", "severity": "high", "phrase": ["x"]}]}, "unknown keys"),
    ({"flags": [{"reason": "x", "severity": "high", "negatable": "no", "phrases": ["x"]}]},
     "negatable"),
    ({"negation": {"window": 20}}, "window"),
    ({"negation": {"after": ["no"]}}, "unknown keys"),
    ({"language": "es"}, "expected 'en'"),
    ({"extra": 1}, "unknown keys"),
])
def test_mistakes_in_a_file_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RedFlagsError, match=message):
        parse_flags("en", {**GOOD, **change})


@pytest.fixture
def other_translations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = Path(__file__).resolve().parents[2] / "translations"
    (tmp_path / "redflags").mkdir()
    (tmp_path / "words").mkdir()
    for lang in SUPPORTED:
        (tmp_path / "words" / f"{lang}.yaml").write_text(
            (root / "words" / f"{lang}.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        (tmp_path / "redflags" / f"{lang}.yaml").write_text(
            (root / "redflags" / f"{lang}.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("TRANSLATIONS_DIR", str(tmp_path))
    redflags.clear_cache()
    words.clear_cache()
    yield tmp_path
    monkeypatch.delenv("TRANSLATIONS_DIR")
    redflags.clear_cache()
    words.clear_cache()


def test_translators_add_a_phrase(other_translations: Path) -> None:
    path = other_translations / "redflags" / "es.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["flags"][0]["phrases"].append("me arde el pecho")
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert detect_red_flags("me arde el pecho", "es")[0].reason == "chest_pain"


def test_a_missing_file_is_an_error(other_translations: Path) -> None:
    (other_translations / "redflags" / "ht.yaml").unlink()
    with pytest.raises(RedFlagsError, match="no red-flag phrases"):
        detect_red_flags("hello", "en")
