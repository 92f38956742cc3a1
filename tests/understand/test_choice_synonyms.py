"""Choice options as participants name them in their own words, negated options, clock times.

The options are built as the engine builds them: the flow's English label and synonyms, the
catalog translation, and the translators' ``choice_synonyms`` from the words files.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.engine.events import AnswerRejected, FieldSet
from bot.engine.flow import Flow
from bot.engine.languages import SUPPORTED
from bot.engine.session import Participant
from bot.engine.transcript import Conversation
from bot.engine.understand import Choice, parse_choice, parse_multi_choice
from bot.engine.understand.words import (
    WordsError,
    choice_synonyms,
    clear_cache,
    load_words,
    translations_dir,
)
from bot.i18n import catalogs
from bot.simulator import load_flows

from .options import severity, symptoms

ROOT = Path(__file__).resolve().parents[2]
FLOWS = load_flows(ROOT / "flows")

SEVERITY = ("symptom_questionnaire", "nausea")
WHY = ("daily_checkin", "meds_why")
TIME = ("onboarding", "checkin_time")


def options(question: tuple[str, str], lang: str) -> tuple[Choice, ...]:
    """The options of a shipped question, as the engine builds them for ``lang``."""
    flow, step = question
    answer = FLOWS[flow].by_id[step].answer
    assert answer is not None
    loc = catalogs(lang)
    return tuple(
        Choice(c.value, (c.label.source, loc.translate(c.label.context, c.label.source),
                         *c.synonyms, *choice_synonyms(lang, c.value, flow, step)))
        for c in answer.choices
    )


def choice_questions() -> Iterator[tuple[str, str]]:
    for flow in FLOWS.values():
        for step in flow.steps:
            if step.answer is not None and step.answer.type in ("choice", "multi_choice"):
                yield flow.id, step.id


# --- the translators' own words ----------------------------------------------------------

OWN_WORDS = [
    # None, in every language
    ("ar", SEVERITY, "لا", "none"),
    ("ar", SEVERITY, "لا شيء", "none"),
    ("zh", SEVERITY, "没有", "none"),
    ("zh", SEVERITY, "都没有", "none"),
    ("vi", SEVERITY, "không", "none"),
    ("vi", SEVERITY, "khong", "none"),
    ("vi", SEVERITY, "không có gì", "none"),
    ("es", SEVERITY, "nada", "none"),
    ("es", SEVERITY, "Nada.", "none"),
    ("pt", SEVERITY, "nada", "none"),
    ("fr", SEVERITY, "rien", "none"),
    ("fr", SEVERITY, "pas du tout", "none"),
    ("ht", SEVERITY, "anyen", "none"),
    ("ht", SEVERITY, "pa gen anyen", "none"),
    ("sw", SEVERITY, "hakuna", "none"),
    ("sw", SEVERITY, "hata kidogo", "none"),
    ("en", SEVERITY, "nothing", "none"),
    # Grades in everyday words
    ("fr", SEVERITY, "un peu", "mild"),
    ("fr", SEVERITY, "juste un peu", "mild"),
    ("fr", SEVERITY, "pas beaucoup", "mild"),
    ("fr", SEVERITY, "beaucoup", "severe"),
    ("fr", SEVERITY, "léger, merci beaucoup", "mild"),  # "merci beaucoup" is thanks
    ("fr", SEVERITY, "grave", "severe"),
    ("fr", SEVERITY, "très grave", "very_severe"),
    ("es", SEVERITY, "un poco", "mild"),
    ("es", SEVERITY, "fuerte", "severe"),
    ("es", SEVERITY, "muy fuerte", "very_severe"),
    ("pt", SEVERITY, "um pouco", "mild"),
    ("pt", SEVERITY, "forte", "severe"),
    ("sw", SEVERITY, "kidogo tu", "mild"),
    ("sw", SEVERITY, "mbaya sana", "very_severe"),
    ("ar", SEVERITY, "شوية", "mild"),
    ("ar", SEVERITY, "شديدة", "severe"),
    ("zh", SEVERITY, "有一点", "mild"),
    ("zh", SEVERITY, "很严重", "severe"),
    ("zh", SEVERITY, "特别严重", "very_severe"),
    ("vi", SEVERITY, "hơi hơi", "mild"),
    ("vi", SEVERITY, "nặng lắm", "very_severe"),
    ("ht", SEVERITY, "yon ti kras", "mild"),
    ("ht", SEVERITY, "grav anpil", "very_severe"),
    ("en", SEVERITY, "a bit", "mild"),
    ("en", SEVERITY, "slight", "mild"),
    ("en", SEVERITY, "unbearable", "very_severe"),
    # English words count in every language, as the flows' synonyms do
    ("fr", SEVERITY, "a little", "mild"),
    ("sw", SEVERITY, "very bad", "very_severe"),
    # Side effects, named by the words in brackets in the translated label
    ("zh", WHY, "副作用", "side_effects"),
    ("zh", WHY, "有副作用", "side_effects"),
    ("ar", WHY, "آثار جانبية", "side_effects"),
    ("ar", WHY, "اثار جانبيه", "side_effects"),
    ("vi", WHY, "tác dụng phụ", "side_effects"),
    ("vi", WHY, "tac dung phu", "side_effects"),
    ("es", WHY, "efectos secundarios", "side_effects"),
    ("fr", WHY, "effets secondaires", "side_effects"),
    ("pt", WHY, "efeitos colaterais", "side_effects"),
    ("sw", WHY, "madhara", "side_effects"),
    ("ht", WHY, "efè segondè", "side_effects"),
    ("es", WHY, "se me acabó", "ran_out"),
    ("zh", WHY, "药吃完了", "ran_out"),
    ("vi", WHY, "hết thuốc", "ran_out"),
    ("fr", WHY, "j'ai oublié", "forgot"),
    ("sw", WHY, "nilisahau", "forgot"),
    ("ht", WHY, "lòt rezon", "other"),
    ("zh", WHY, "其他", "other"),
    # Check-in time slots
    ("zh", TIME, "早上", "morning"),
    ("zh", TIME, "中午", "midday"),
    ("zh", TIME, "晚上", "evening"),
    ("ar", TIME, "الصباح", "morning"),
    ("ar", TIME, "صباحا", "morning"),
    ("ar", TIME, "المساء", "evening"),
    ("vi", TIME, "buổi sáng", "morning"),
    ("vi", TIME, "buoi sang", "morning"),
    ("vi", TIME, "buổi tối", "evening"),
    ("vi", TIME, "tôi chọn buổi tối", "evening"),  # "tôi" (I) is not "tối" (evening)
    ("vi", TIME, "trưa", "midday"),
    ("fr", TIME, "le soir", "evening"),
    ("fr", TIME, "le matin", "morning"),
    ("fr", TIME, "à midi", "midday"),
    ("pt", TIME, "noite", "evening"),
    ("pt", TIME, "à noite", "evening"),
    ("pt", TIME, "de manhã", "morning"),
    ("es", TIME, "en la noche", "evening"),
    ("es", TIME, "por la mañana", "morning"),
    ("es", TIME, "mediodía", "midday"),
    ("sw", TIME, "jioni", "evening"),
    ("sw", TIME, "asubuhi", "morning"),
    ("sw", TIME, "mchana", "midday"),
    ("ht", TIME, "aswè", "evening"),
    ("ht", TIME, "nan maten", "morning"),
    ("ht", TIME, "midi", "midday"),
    ("en", TIME, "tonight", "evening"),
    ("en", TIME, "lunchtime", "midday"),
    # Clock times shown in the labels, however they are written
    ("fr", TIME, "18h30", "evening"),
    ("fr", TIME, "8h30", "morning"),
    ("fr", TIME, "12h30", "midday"),
    ("pt", TIME, "18h30", "evening"),
    ("ht", TIME, "6è30", "evening"),
    ("ht", TIME, "18:30", "evening"),
    ("en", TIME, "6:30", "evening"),
    ("en", TIME, "6:30pm", "evening"),
    ("en", TIME, "6.30 pm", "evening"),
    ("en", TIME, "12:30 pm", "midday"),  # not "pm", evening
    ("en", TIME, "8:30", "morning"),
    ("en", TIME, "08:30", "morning"),
    ("en", TIME, "evening, 18:30", "evening"),
    ("es", TIME, "6:30 p. m.", "evening"),
    ("zh", TIME, "6:30", "evening"),
    ("zh", TIME, "晚上6:30", "evening"),
    ("zh", TIME, "８：３０", "morning"),  # full-width digits
    ("ar", TIME, "٦:٣٠", "evening"),
    ("vi", TIME, "12:30", "midday"),
    ("vi", TIME, "8g30", "morning"),
    ("vi", TIME, "6 giờ 30 tối", "evening"),
    ("zh", TIME, "8点30", "morning"),
]


@pytest.mark.parametrize(("lang", "question", "text", "expected"), OWN_WORDS)
def test_own_words_pick_the_option(
    lang: str, question: tuple[str, str], text: str, expected: str
) -> None:
    assert parse_choice(text, lang, options(question, lang)) == expected


TIME_UNCLEAR = [
    ("en", "8:30 pm"),  # not offered
    ("en", "7:15"),
    ("en", "morning 6:30"),  # two different slots
    ("vi", "8:30 tối"),  # 8:30 in the evening
    ("ar", "8:30 مساء"),
]


@pytest.mark.parametrize(("lang", "text"), TIME_UNCLEAR)
def test_a_time_no_option_has_is_unclear(lang: str, text: str) -> None:
    assert parse_choice(text, lang, options(TIME, lang)) is None


def test_clock_times_only_count_when_the_options_show_times() -> None:
    assert parse_choice("1:30", "en", options(SEVERITY, "en")) is None


# --- negation ------------------------------------------------------------------------------

NEGATED = [
    ("en", "not severe"),
    ("en", "Not severe."),
    ("en", "it wasn't severe"),
    ("en", "not very severe"),
    ("en", "not that bad"),
    ("en", "not sever"),  # no guessing the typo either
    ("en", "not 4"),
    ("fr", "pas très sévère"),
    ("fr", "pas sévère"),
    ("fr", "ce n'est pas grave"),
    ("pt", "não foi grave"),
    ("pt", "nao grave"),
    ("pt", "não foi muito grave"),
    ("ht", "pa grav"),
    ("ht", "pa trè grav"),
    ("sw", "sio kali"),
    ("sw", "si kali sana"),
    ("sw", "haikuwa kali"),
    ("es", "no es grave"),
    ("es", "no fue muy grave"),
    ("ar", "ليس شديدا"),
    ("ar", "مش شديد"),
    ("ar", "غير شديد"),
    ("ar", "لم يكن شديدا"),
    ("zh", "不严重"),
    ("zh", "不太严重"),
    ("zh", "没有很严重"),
    ("zh", "没那么严重"),
    ("zh", "并不严重"),
    ("vi", "không nặng"),
    ("vi", "không nặng lắm"),
    ("vi", "khong nang"),
]


@pytest.mark.parametrize(("lang", "text"), NEGATED)
def test_a_negated_option_is_never_chosen(lang: str, text: str) -> None:
    assert parse_choice(text, lang, options(SEVERITY, lang)) is None


NEGATED_BUT_NAMED = [
    ("en", "not severe, just mild", "mild"),
    ("en", "moderate, not severe", "moderate"),
    ("en", "severe, not very severe", "severe"),
    ("fr", "pas grave, léger", "mild"),
    ("fr", "pas beaucoup de nausées, pas grave", "mild"),
    ("es", "no es grave, es leve", "mild"),
    ("pt", "não foi grave, foi moderado", "moderate"),
    ("zh", "不严重，轻微", "mild"),
    ("sw", "si kali, kidogo tu", "mild"),
    ("ht", "pa grav, lejè", "mild"),
    ("vi", "không nặng, chỉ nhẹ thôi", "mild"),
    ("ar", "مش شديد، متوسط", "moderate"),
]


@pytest.mark.parametrize(("lang", "text", "expected"), NEGATED_BUT_NAMED)
def test_another_option_named_beside_a_negated_one_is_chosen(
    lang: str, text: str, expected: str
) -> None:
    assert parse_choice(text, lang, options(SEVERITY, lang)) == expected


NOT_NEGATIONS = [
    # A negation word inside a listed phrase is part of it.
    ("en", "not at all", "none"),
    ("fr", "pas du tout", "none"),
    ("vi", "không có", "none"),
    ("vi", "không", "none"),
    ("zh", "没有", "none"),
    ("ar", "لا", "none"),
    ("es", "no", "none"),
    ("ht", "pa gen", "none"),
    ("sw", "hapana", "none"),
    ("en", "no pain", "none"),
    # Clause punctuation ends a negation.
    ("en", "no. moderate", None),  # "no" (none) and moderate: unclear
    ("fr", "non, sévère", None),
    # A negation with no option after it in its clause leaves the others alone.
    ("en", "don't worry, it's mild", "mild"),
    ("fr", "je ne sais pas, un peu", "mild"),
]


@pytest.mark.parametrize(("lang", "text", "expected"), NOT_NEGATIONS)
def test_negation_words_that_negate_no_option(
    lang: str, text: str, expected: str | None
) -> None:
    assert parse_choice(text, lang, options(SEVERITY, lang)) == expected


def test_english_negations_are_read_as_written() -> None:
    # Vietnamese "nó" (it) is not English "no".
    vietnamese = severity(("Không có",), ("Nhẹ",), ("Trung bình",), ("Nặng",), ("Rất nặng",))
    assert parse_choice("nó nặng", "vi", vietnamese) == "severe"


SPANISH_SYMPTOMS = symptoms(
    ("Náuseas",), ("Cansancio",), ("Dolor de cabeza",), ("Mareo",), ("Ninguno",)
)

MULTI_NEGATED = [
    ("en", "nausea, no headache", ["nausea"]),
    ("en", "nausea but not headache", ["nausea"]),
    ("en", "not nausea and headache", ["headache"]),
    ("en", "no headache", None),
    ("es", "náuseas, no mareo", ["nausea"]),
    ("es", "no tengo mareo pero sí dolor de cabeza", ["headache"]),
]


@pytest.mark.parametrize(("lang", "text", "expected"), MULTI_NEGATED)
def test_multi_choice_leaves_negated_options_out(
    lang: str, text: str, expected: list[str] | None
) -> None:
    choices = SPANISH_SYMPTOMS if lang == "es" else symptoms()
    assert parse_multi_choice(text, lang, choices) == expected


# --- the words files ---------------------------------------------------------------------


def _known_keys() -> set[str]:
    keys: set[str] = set()
    for flow, step in choice_questions():
        answer = FLOWS[flow].by_id[step].answer
        assert answer is not None
        for choice in answer.choices:
            keys |= {choice.value, f"{flow}:{step}:{choice.value}"}
    return keys


@pytest.mark.parametrize("lang", SUPPORTED)
def test_synonym_keys_name_options_of_the_flows(lang: str) -> None:
    unknown = set(load_words(lang).choice_synonyms) - _known_keys()
    assert not unknown, f"{lang}: no such option in flows/: {sorted(unknown)}"


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_synonym_alone_picks_its_option(lang: str) -> None:
    """A word listed for two options of one question, or read as something else, fails."""
    for flow, step in choice_questions():
        answer = FLOWS[flow].by_id[step].answer
        assert answer is not None
        if answer.type != "choice":
            continue
        choices = options((flow, step), lang)
        for choice in answer.choices:
            for word in choice_synonyms(lang, choice.value, flow, step):
                picked = parse_choice(word, lang, choices)
                assert picked == choice.value, f"{lang} {flow}:{step}: {word!r} -> {picked}"


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_language_has_negations_and_grade_words(lang: str) -> None:
    words = load_words(lang)
    assert words.negations
    for value in ("none", "mild", "moderate", "severe", "very_severe", "side_effects",
                  "morning", "midday", "evening"):
        assert words.choice_synonyms.get(value), f"{lang}: no choice_synonyms for {value}"


@pytest.mark.parametrize("lang", SUPPORTED)
def test_word_file_explains_choice_synonyms(lang: str) -> None:
    text = (translations_dir() / "words" / f"{lang}.yaml").read_text(encoding="utf-8")
    for key in ("#   negations", "# choice_synonyms", "#   <flow>:<step>:<value>"):
        assert key in text


@pytest.fixture
def words_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TRANSLATIONS_DIR", str(tmp_path))
    clear_cache()
    (tmp_path / "words").mkdir()
    yield tmp_path
    clear_cache()


BASE = """
yes_no: {yes_words: ["yes"], no_words: ["no"]}
numbers: {words: {1: ["one"]}}
keywords: {stop: ["stop"], help: ["help"], language_names: ["english"]}
"""


def _write(directory: Path, lang: str, synonyms: str) -> None:
    path = directory / "words" / f"{lang}.yaml"
    path.write_text(BASE.replace("english", lang) + synonyms, encoding="utf-8")


def test_a_question_of_its_own_replaces_the_shared_words(words_dir: Path) -> None:
    _write(words_dir, "en", "choice_synonyms: {severe: [bad]}\n")
    _write(words_dir, "de", """
choice_synonyms:
  severe: ["schlimm", "stark"]
  "symptom_questionnaire:pain:choice.severe": ["heftig"]
""")
    assert choice_synonyms("de", "severe") == ("schlimm", "stark", "bad")
    assert choice_synonyms("de-AT", "severe", "daily_checkin", "wellbeing") == (
        "schlimm", "stark", "bad")
    assert choice_synonyms("de", "severe", "symptom_questionnaire", "pain") == ("heftig", "bad")
    assert choice_synonyms("en", "severe") == ("bad",)
    assert choice_synonyms("de", "mild") == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("choice_synonyms: [severe]\n", "must map option values"),
        ("choice_synonyms: {no: [nein]}\n", "put it in quotes"),
        ('choice_synonyms: {"pain:severe": [schlimm]}\n', "<flow>:<step>:<value>"),
        ("choice_synonyms: {severe: schlimm}\n", "expected a list of words"),
        ("choice: {negation: [nicht]}\n", "unknown keys"),
    ],
)
def test_malformed_choice_synonyms_are_reported(
    words_dir: Path, body: str, message: str
) -> None:
    _write(words_dir, "de", body)
    with pytest.raises(WordsError, match=message):
        load_words("de")


# --- through the engine --------------------------------------------------------------------

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def flows() -> dict[str, Flow]:
    return FLOWS


def test_the_engine_reads_the_translators_words(flows: dict[str, Flow]) -> None:
    conv = Conversation(flows, Participant("p", "fr", "Europe/Paris"),
                        datetime(2026, 3, 2, 8, 30, tzinfo=NY), catalogs)
    conv.start("onboarding")
    conv.reply("oui")
    conv.reply("3")
    events = conv.reply("le soir")
    assert FieldSet(field="checkin_time", value="18:30", previous=None) in events


def test_the_engine_asks_again_after_a_negated_grade(flows: dict[str, Flow]) -> None:
    conv = Conversation(flows, Participant("p", "pt", "America/Sao_Paulo"),
                        datetime(2026, 3, 2, 8, 30, tzinfo=NY), catalogs)
    conv.start("symptom_questionnaire")
    events = conv.reply("não foi grave")
    assert any(isinstance(e, AnswerRejected) for e in events)
    assert conv.session is not None and conv.session.answers == {}
