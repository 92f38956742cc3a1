"""Word files, normalisation and the behaviour shared by every language."""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import i18n
from bot.config import load_env
from bot.engine.languages import SUPPORTED
from bot.engine.understand import (
    Choice,
    detect_keyword,
    parse_choice,
    parse_multi_choice,
    parse_number,
    parse_yes_no,
)
from bot.engine.understand.normalize import normalize, tokenize
from bot.engine.understand.words import WordsError, clear_cache, load_words, translations_dir

UNDERSTAND = Path(__file__).resolve().parents[2] / "bot" / "engine" / "understand"


# --- word files --------------------------------------------------------------------------


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_language_has_its_words(lang: str) -> None:
    words = load_words(lang)
    assert words.lang == lang
    assert words.yes_words and words.no_words and words.unsure
    assert words.stop and words.stop_phrases and words.start and words.help
    assert words.language_names and words.filler and words.connectors
    for value in (*range(0, 21), *range(30, 101, 10)):
        assert words.numbers.get(value), f"{lang}: no word for {value}"


@pytest.mark.parametrize("lang", SUPPORTED)
def test_word_file_explains_itself(lang: str) -> None:
    text = (translations_dir() / "words" / f"{lang}.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Words the bot uses")
    for key in ("yes_words", "stop_phrases", "language_names", "unsure"):
        assert f"#   {key}" in text or f"# {key}" in text


def _keys(phrases: tuple[str, ...]) -> set[str]:
    return {normalize(p) for p in phrases}


@pytest.mark.parametrize("lang", SUPPORTED)
def test_no_phrase_is_both_yes_and_no(lang: str) -> None:
    words = load_words(lang)
    yes = _keys(words.yes_words) | _keys(words.yes_alone)
    no = _keys(words.no_words) | _keys(words.no_alone)
    unsure = _keys(words.unsure)
    assert not yes & no
    assert not (yes | no) & unsure


@pytest.mark.parametrize("lang", SUPPORTED)
def test_yes_is_never_a_start_keyword(lang: str) -> None:
    for word in load_words(lang).yes_words:
        assert detect_keyword(word, lang) != detect_keyword("START", "en"), word


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_stop_phrase_is_recognised(lang: str) -> None:
    words = load_words(lang)
    for phrase in (*words.stop, *words.stop_phrases):
        assert detect_keyword(phrase, "en") == detect_keyword("STOP", "en"), phrase


@pytest.mark.parametrize("lang", SUPPORTED)
def test_own_language_name_switches_to_it(lang: str) -> None:
    for name in load_words(lang).language_names:
        found = detect_keyword(name, "en")
        assert found is not None and found.language == lang, name


def _write(directory: Path, lang: str, body: str) -> None:
    (directory / "words").mkdir(exist_ok=True)
    (directory / "words" / f"{lang}.yaml").write_text(body, encoding="utf-8")


MINIMAL = """
yes_no: {yes_words: ["ja"], no_words: ["nein"]}
numbers: {words: {1: ["eins"]}}
keywords: {stop: ["halt"], help: ["hilfe"], language_names: ["deutsch"]}
"""


@pytest.fixture
def words_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TRANSLATIONS_DIR", str(tmp_path))
    clear_cache()
    yield tmp_path
    clear_cache()


def test_translations_dir_from_environment(words_dir: Path) -> None:
    _write(words_dir, "de", MINIMAL)
    assert translations_dir() == words_dir
    assert load_words("de").yes_words == ("ja",)
    assert load_words("de-AT").numbers[1] == ("eins",)


def test_the_older_name_of_the_setting_still_works(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSLATIONS_DIR", raising=False)
    monkeypatch.setenv("BOT_TRANSLATIONS_DIR", str(tmp_path / "old"))
    assert translations_dir() == tmp_path / "old"
    assert i18n.translations_dir() == tmp_path / "old"
    monkeypatch.setenv("TRANSLATIONS_DIR", str(tmp_path / "new"))
    assert translations_dir() == tmp_path / "new"


def test_the_setting_may_come_from_the_env_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRANSLATIONS_DIR", "BOT_TRANSLATIONS_DIR"):
        monkeypatch.setenv(name, "")  # restored afterwards: load_env writes os.environ
        monkeypatch.delenv(name)
    env_file = tmp_path / ".env"
    env_file.write_text(f"TRANSLATIONS_DIR={tmp_path / 'from-env-file'}\n", encoding="utf-8")
    load_env(env_file)
    assert i18n.translations_dir() == translations_dir() == tmp_path / "from-env-file"


def test_missing_language_is_a_clear_error(words_dir: Path) -> None:
    with pytest.raises(WordsError, match="no word list for language 'xx'"):
        load_words("xx")
    with pytest.raises(WordsError):
        parse_yes_no("yes", "xx")


def test_unquoted_no_is_reported(words_dir: Path) -> None:
    _write(words_dir, "de", MINIMAL.replace('no_words: ["nein"]', "no_words: [no]"))
    with pytest.raises(WordsError, match="put words in quotes"):
        load_words("de")


def test_misspelt_key_is_reported(words_dir: Path) -> None:
    _write(words_dir, "de", MINIMAL.replace("yes_words", "yes_word"))
    with pytest.raises(WordsError, match="unknown keys"):
        load_words("de")


def test_missing_required_list_is_reported(words_dir: Path) -> None:
    _write(words_dir, "de", MINIMAL.replace('stop: ["halt"], ', ""))
    with pytest.raises(WordsError, match="keywords.stop"):
        load_words("de")


# --- normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Sí,   CLARO!! ", "si claro"),
        ("Não\u200b", "nao"),
        ("ARRÊTEZ de m’écrire", "arretez de mecrire"),
        ("yes\x00", "yes"),
        ("👍 ok 🙏🏽", "ok"),
        ("yesssss", "yess"),
        ("Ｙｅｓ　７", "yes 7"),
        ("٣ و ٧", "3 و 7"),
        ("۴", "4"),
        ("نَعَم", "نعم"),
        ("أحمد إبراهيم آمنة", "احمد ابراهيم امنه"),
        ("مدرسة", "مدرسه"),
        ("đừng", "dung"),
        ("是的。", "是 的"),
        ("7am", "7 am"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_accents_kept_in_the_exact_view() -> None:
    tokens = tokenize("Sáu đúng")
    assert tokens.exact == ("sáu", "đúng")
    assert tokens.folded == ("sau", "dung")
    assert normalize("Sáu", keep_accents=True) == "sáu"


# --- choices shared behaviour ------------------------------------------------------------


def test_labels_win_over_positions() -> None:
    counts = (Choice("zero", ("0",)), Choice("one", ("1",)), Choice("two", ("2 or more",)))
    assert parse_choice("1", "en", counts) == "one"
    assert parse_choice("0", "en", counts) == "zero"
    assert parse_choice("3", "en", counts) == "two"


def test_close_typo_between_two_labels_is_refused() -> None:
    pains = (Choice("mild", ("mild pain",)), Choice("wild", ("wild pain",)))
    assert parse_choice("xild pain", "en", pains) is None
    assert parse_choice("mild pian", "en", pains) == "mild"


def test_longest_label_wins() -> None:
    scale = (Choice("severe", ("severe",)), Choice("very", ("very severe",)))
    assert parse_choice("very severe", "en", scale) == "very"
    assert parse_choice("severe", "en", scale) == "severe"
    assert parse_multi_choice("very severe", "en", scale) == ["very"]


def test_no_choices() -> None:
    assert parse_choice("1", "en", ()) is None
    assert parse_multi_choice("1", "en", ()) is None


def test_multi_choice_keeps_option_order_and_deduplicates() -> None:
    options = tuple(Choice(v, (v,)) for v in ("a1", "b2", "c3", "d4"))
    assert parse_multi_choice("4, 2, 2 and 4", "en", options) == ["b2", "d4"]


# --- engine rules ------------------------------------------------------------------------

FORBIDDEN = {"flask", "twilio", "rq", "redis", "sqlmodel", "sqlalchemy", "requests", "babel"}


@pytest.mark.parametrize(
    "module",
    ["normalize", "words", "phrases", "yesno", "numbers", "choice", "keywords", "__init__"],
)
def test_parsers_import_no_infrastructure(module: str) -> None:
    tree = ast.parse((UNDERSTAND / f"{module}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{module} imports {name}"


def test_parsing_is_fast() -> None:
    replies = ["sí, ya me la tomé", "about 7 out of 10", "no mas mensajes por favor", "moderat"]
    choices = (Choice("mild", ("Mild",)), Choice("moderate", ("Moderate",)))
    for lang in SUPPORTED:  # warm the per-language tables
        parse_yes_no("x", lang), parse_number("x", lang), detect_keyword("x", lang)
    start = time.perf_counter()
    rounds = 200
    for _ in range(rounds):
        for text in replies:
            parse_yes_no(text, "es")
            parse_number(text, "en", 0, 10)
            detect_keyword(text, "es")
            parse_choice(text, "en", choices)
    per_parse = (time.perf_counter() - start) / (rounds * len(replies) * 4)
    # Tens of microseconds on a laptop; the bound leaves room for a busy CI machine.
    assert per_parse < 0.002
