"""Free-text dates and times: a corpus of realistic replies per language.

Every reply is read against the same moment, Monday 30 November 2026 at 10:00 in a zone
where that language is spoken. Expected values are local: "YYYY-MM-DD HH:MM" when the reply
gave a time (or a time of day), "YYYY-MM-DD" when it named only a day. The corpus is also
what bench/dates.py times.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.engine.languages import SUPPORTED
from bot.engine.understand.dates import When, parse_datetime, parse_when, warm_up

NOW = (2026, 11, 30, 10, 0)  # a Monday
ZONES = {
    "en": "America/New_York",
    "es": "America/Mexico_City",
    "fr": "Europe/Paris",
    "pt": "America/Sao_Paulo",
    "sw": "Africa/Nairobi",
    "ar": "Asia/Riyadh",
    "zh": "Asia/Shanghai",
    "vi": "Asia/Ho_Chi_Minh",
    "ht": "America/Port-au-Prince",
}

CORPUS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("tomorrow at 3pm", "2026-12-01 15:00"),
        ("tomorrow at 3", "2026-12-01 15:00"),          # a bare 1-7 is afternoon
        ("next Tuesday", "2026-12-08"),                 # Tuesday of next week
        ("next tuesday at 10", "2026-12-08 10:00"),
        ("friday at 5", "2026-12-04 17:00"),
        ("on Friday 5pm", "2026-12-04 17:00"),
        ("Dec 3 at 2:30pm", "2026-12-03 14:30"),
        ("3/12", "2027-03-12"),                         # month first; 12 March has passed
        ("25/12", "2026-12-25"),                        # impossible month first: day first
        ("in 2 days", "2026-12-02"),
        ("the day after tomorrow", "2026-12-02"),
        ("today 4pm", "2026-11-30 16:00"),
        ("tmrw 3pm", "2026-12-01 15:00"),
        ("Tomorrow @ 3 PM 👍", "2026-12-01 15:00"),
        ("ok tomorow at 10am thanks", "2026-12-01 10:00"),
        ("Thursday morning", "2026-12-03 09:00"),
        ("at 3.30pm", "2026-11-30 15:30"),
        ("9am", "2026-12-01 09:00"),                    # already past today
        ("03:00", "2026-12-01 03:00"),                  # leading zero: a 24-hour clock
        ("tonight at 8", "2026-11-30 20:00"),
        ("wed at 11:15", "2026-12-02 11:15"),
        ("December 5th at noon", "2026-12-05 12:00"),
        ("the 5th", "2026-12-05"),
        ("first of December", "2026-12-01"),
        ("tuesday the 8th", "2026-12-08"),
        ("tomorrow 10-11am", "2026-12-01 10:00"),
        ("2026-12-03 14:00", "2026-12-03 14:00"),
        ("in 2 hours", "2026-11-30 12:00"),
        ("Sorry! Can I do tomorrow afternoon instead?", "2026-12-01 15:00"),
    ],
    "es": [
        ("mañana a las 3", "2026-12-01 15:00"),
        ("manana a las 3pm", "2026-12-01 15:00"),
        ("el martes a las 3pm", "2026-12-01 15:00"),
        ("martes 3pm", "2026-12-01 15:00"),
        ("pasado mañana", "2026-12-02"),
        ("mañana por la tarde", "2026-12-01 15:00"),
        ("mañana por la mañana", "2026-12-01 09:00"),
        ("el 5 de diciembre a las 10", "2026-12-05 10:00"),
        ("el próximo lunes", "2026-12-07"),
        ("hoy a las 4", "2026-11-30 16:00"),
        ("ok mañana a las 3 gracias", "2026-12-01 15:00"),
        ("Mañana alas 3 😊", "2026-12-01 15:00"),
        ("el proximo lunes a las 9 de la mañana", "2026-12-07 09:00"),
        ("el jueves a las 11 y media", "2026-12-03 11:30"),
        ("el viernes a las 4 de la tarde porfa", "2026-12-04 16:00"),
        ("3/12", "2026-12-03"),                         # day first
        ("buenos días, el miercoles a las 10", "2026-12-02 10:00"),
        ("en 3 días", "2026-12-03"),
        ("hoy en la noche a las 8", "2026-11-30 20:00"),
        ("a las 12 del mediodía", "2026-11-30 12:00"),
        ("el primero de diciembre", "2026-12-01"),
    ],
    "fr": [
        ("demain à 15h", "2026-12-01 15:00"),
        ("demain a 15h", "2026-12-01 15:00"),
        ("mardi prochain à 10h", "2026-12-08 10:00"),
        ("après-demain", "2026-12-02"),
        ("apres demain", "2026-12-02"),
        ("le 5 décembre à 10h30", "2026-12-05 10:30"),
        ("le 5 decembre a 10h30", "2026-12-05 10:30"),
        ("vendredi 14h", "2026-12-04 14:00"),
        ("Demain matin vers 9h 🙂", "2026-12-01 09:00"),
        ("ce soir à 19h", "2026-11-30 19:00"),
        ("jeudi à 9h et demie", "2026-12-03 09:30"),
        ("mercredi à midi", "2026-12-02 12:00"),
        ("dans 3 jours", "2026-12-03"),
        ("le 1er décembre", "2026-12-01"),
        ("aujourd'hui à 16h", "2026-11-30 16:00"),
        ("3/12", "2026-12-03"),
    ],
    "pt": [
        ("amanhã às 15h", "2026-12-01 15:00"),
        ("amanha as 3 da tarde", "2026-12-01 15:00"),
        ("terça-feira às 10", "2026-12-01 10:00"),
        ("depois de amanhã", "2026-12-02"),
        ("depois de amanha", "2026-12-02"),
        ("quinta às 9 da manhã", "2026-12-03 09:00"),
        ("sexta feira as 10h30", "2026-12-04 10:30"),
        ("hoje à noite", "2026-11-30 20:00"),
        ("dia 5 de dezembro às 14h", "2026-12-05 14:00"),
        ("amanhã de manhã 👍", "2026-12-01 09:00"),
        ("em 2 dias", "2026-12-02"),
        ("ok, amanhã às 3 e meia obrigada", "2026-12-01 15:30"),
        ("próxima segunda às 8h", "2026-12-07 08:00"),
    ],
    "sw": [
        ("kesho saa tisa", "2026-12-01 15:00"),         # Swahili time: hour 9 from 06:00
        ("keshokutwa", "2026-12-02"),
        ("Jumanne", "2026-12-01"),
        ("Ijumaa saa nne asubuhi", "2026-12-04 10:00"),
        ("kesho saa 15:00", "2026-12-01 15:00"),        # a clock time stays as written
        ("saa tisa mchana", "2026-11-30 15:00"),
        ("saa mbili usiku", "2026-11-30 20:00"),
        ("kesho saa 3 asubuhi", "2026-12-01 09:00"),
        ("Jumatano ijayo saa tatu asubuhi", "2026-12-09 09:00"),
        ("baada ya siku 2", "2026-12-02"),
        ("tarehe 5 desemba", "2026-12-05"),
        ("leo jioni", "2026-11-30 19:00"),
        ("sawa kesho saa nane na nusu mchana asante", "2026-12-01 14:30"),
        ("kesho kutwa saa 4 asubuhi", "2026-12-02 10:00"),
    ],
    "ar": [
        ("غدا الساعة 3", "2026-12-01 15:00"),
        ("غداً الساعة ٣ مساءً", "2026-12-01 15:00"),
        ("بعد غد", "2026-12-02"),
        ("يوم الثلاثاء", "2026-12-01"),
        ("بكرة الساعة 10 صباحا", "2026-12-01 10:00"),
        ("الخميس القادم الساعة الرابعة", "2026-12-10 16:00"),
        ("الساعة 3 والنصف", "2026-11-30 15:30"),
        ("مساء الخير، غدا الساعة 5", "2026-12-01 17:00"),   # a greeting, not "evening"
        ("٥/١٢", "2026-12-05"),
        ("بعد 3 أيام", "2026-12-03"),
        ("إن شاء الله غدا الساعة ١١ 🙏", "2026-12-01 11:00"),
        ("الأحد الساعة 9 صباحاً", "2026-12-06 09:00"),
    ],
    "zh": [
        ("明天下午3点", "2026-12-01 15:00"),
        ("明天下午三点", "2026-12-01 15:00"),
        ("后天", "2026-12-02"),
        ("下周二上午10点", "2026-12-08 10:00"),
        ("周五下午两点半", "2026-12-04 14:30"),
        ("12月3日", "2026-12-03"),
        ("3号下午2点", "2026-12-03 14:00"),
        ("明天上午十点", "2026-12-01 10:00"),
        ("今晚8点", "2026-11-30 20:00"),
        ("三天后", "2026-12-03"),
        ("星期四 9:30", "2026-12-03 09:30"),
        ("好的，明天下午3点见👌", "2026-12-01 15:00"),
        ("12/3", "2026-12-03"),                        # month first, as written in China
    ],
    "vi": [
        ("ngày mai lúc 3 giờ chiều", "2026-12-01 15:00"),
        ("ngay mai 3h chieu", "2026-12-01 15:00"),
        ("thứ ba tuần sau", "2026-12-08"),
        ("ngày kia", "2026-12-02"),
        ("toi muon den chieu mai", "2026-12-01 15:00"),   # "toi" is "tôi" (I) here
        ("tôi đến lúc 9 giờ sáng thứ 5", "2026-12-03 09:00"),
        ("8h tối nay", "2026-11-30 20:00"),
        ("3 ngày nữa", "2026-12-03"),
        ("ngày 5 tháng 12", "2026-12-05"),
        ("t6 lúc 10h30", "2026-12-04 10:30"),
        ("sáng mai 9h nhé 😊", "2026-12-01 09:00"),
        ("chủ nhật", "2026-12-06"),
        ("thu 4 luc 2 gio chieu", "2026-12-02 14:00"),
    ],
    "ht": [
        ("demen a 3è", "2026-12-01 15:00"),
        ("demen a 3 è apremidi", "2026-12-01 15:00"),
        ("apredemen", "2026-12-02"),
        ("madi pwochen", "2026-12-08"),
        ("vandredi a 10è", "2026-12-04 10:00"),
        ("jodi a 4è", "2026-11-30 16:00"),
        ("demen maten a 9è", "2026-12-01 09:00"),
        ("jedi a twazè", "2026-12-03 15:00"),
        ("5 desanm", "2026-12-05"),
        ("nan 2 jou", "2026-12-02"),
        ("samdi a 10è edmi", "2026-12-05 10:30"),
        ("wi demen a 2e apremidi mesi", "2026-12-01 14:00"),
        ("Demen a 3è 🙏", "2026-12-01 15:00"),
    ],
}

# Replies to other questions that must not be read as dates, in every language.
NEGATIVE = ["no", "si", "1", "yes", "ok", "7", "", "   ", "👍"]
NEGATIVE_BY_LANG: dict[str, list[str]] = {
    "en": ["thanks!", "what time?", "May", "next week", "Tuesday or Wednesday",
           "friday the 8th", "feb 30"],
    "es": ["sí", "gracias", "no puedo", "7 de la"],
    "fr": ["oui", "non", "merci"],
    "pt": ["sim", "não", "nao"],
    "sw": ["ndiyo", "hapana", "sawa"],
    "ar": ["نعم", "لا", "شكرا"],
    "zh": ["好", "不", "是"],
    "vi": ["có", "không", "khong"],
    "ht": ["wi", "non", "mesi"],
}


def now_in(lang: str) -> datetime:
    return datetime(*NOW, tzinfo=ZoneInfo(ZONES[lang]))


CASES = [(lang, text, expected) for lang, items in CORPUS.items() for text, expected in items]


@pytest.mark.parametrize(("lang", "text", "expected"), CASES,
                         ids=[f"{lang}-{i}" for i, (lang, _, _) in enumerate(CASES)])
def test_corpus(lang: str, text: str, expected: str) -> None:
    now = now_in(lang)
    when = parse_when(text, lang, now)
    assert when is not None, f"{lang}: {text!r} not understood"
    assert when.at.tzinfo is now.tzinfo
    if len(expected) == len("2026-12-01"):
        assert (when.at.date().isoformat(), when.has_time) == (expected, False), text
        assert (when.at.hour, when.at.minute) == (0, 0)
    else:
        assert (when.at.strftime("%Y-%m-%d %H:%M"), when.has_time) == (expected, True), text


def test_every_language_has_a_corpus() -> None:
    assert set(CORPUS) == set(SUPPORTED)
    assert all(len(items) >= 10 for items in CORPUS.values())


@pytest.mark.parametrize("lang", sorted(ZONES))
@pytest.mark.parametrize("text", NEGATIVE)
def test_not_a_date(lang: str, text: str) -> None:
    assert parse_when(text, lang, now_in(lang)) is None


NEGATIVE_CASES = [(lang, text) for lang, items in NEGATIVE_BY_LANG.items() for text in items]


@pytest.mark.parametrize(("lang", "text"), NEGATIVE_CASES,
                         ids=[f"{lang}-{i}" for i, (lang, _) in enumerate(NEGATIVE_CASES)])
def test_not_a_date_in_language(lang: str, text: str) -> None:
    assert parse_when(text, lang, now_in(lang)) is None


def test_spring_forward_gap_gives_a_real_instant() -> None:
    # 2026-03-08 02:00-03:00 does not exist in New York.
    zone = ZoneInfo("America/New_York")
    now = datetime(2026, 3, 7, 12, 0, tzinfo=zone)
    when = parse_when("tomorrow at 2:30am", "en", now)
    assert when is not None and when.has_time
    assert when.at.date() == date(2026, 3, 8)
    assert when.at.utcoffset() == timedelta(hours=-4)
    assert (when.at.hour, when.at.minute) == (3, 30)
    assert when.at == when.at.astimezone(UTC).astimezone(zone)
    assert when.at.astimezone(UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_fall_back_overlap_takes_the_first_hour() -> None:
    zone = ZoneInfo("America/New_York")
    now = datetime(2026, 10, 31, 12, 0, tzinfo=zone)
    when = parse_when("tomorrow at 1:30am", "en", now)
    assert when is not None
    assert when.at.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # still EDT


def test_in_hours_counts_real_time_across_a_clock_change() -> None:
    zone = ZoneInfo("America/New_York")
    now = datetime(2026, 3, 8, 1, 30, tzinfo=zone)
    when = parse_when("in 2 hours", "en", now)
    assert when is not None
    assert when.at.astimezone(UTC) - now.astimezone(UTC) == timedelta(hours=2)
    assert (when.at.hour, when.at.minute) == (4, 30)


def test_parse_datetime_wants_a_time_unless_told_otherwise() -> None:
    now = now_in("en")
    assert parse_datetime("tomorrow at 3pm", "en", now) == datetime(
        2026, 12, 1, 15, 0, tzinfo=now.tzinfo)
    assert parse_datetime("next Tuesday", "en", now) is None
    assert parse_datetime("next Tuesday", "en", now, want_time=False) == datetime(
        2026, 12, 8, tzinfo=now.tzinfo)
    assert parse_datetime("no", "en", now, want_time=False) is None


def test_when_is_a_frozen_value() -> None:
    when = When(datetime(2026, 12, 1, 15, tzinfo=UTC), True)
    with pytest.raises(AttributeError):
        when.has_time = False  # type: ignore[misc]


def test_language_tags_and_unknown_languages() -> None:
    now = now_in("es")
    assert parse_when("mañana a las 3", "es-MX", now) == parse_when("mañana a las 3", "es", now)
    with pytest.raises(LookupError):
        parse_when("tomorrow", "xx", now)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        parse_when("tomorrow", "en", datetime(*NOW))


def test_a_time_still_ahead_today_is_today() -> None:
    zone = ZoneInfo("Europe/Paris")
    morning = datetime(2026, 11, 30, 8, 0, tzinfo=zone)
    evening = datetime(2026, 11, 30, 18, 0, tzinfo=zone)
    assert parse_datetime("à 9h", "fr", morning) == datetime(2026, 11, 30, 9, tzinfo=zone)
    assert parse_datetime("à 9h", "fr", evening) == datetime(2026, 12, 1, 9, tzinfo=zone)


def test_warm_up() -> None:
    warm_up(["es", "ht"])


@pytest.fixture
def words_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRANSLATIONS_DIR", str(tmp_path))
    (tmp_path / "dates").mkdir()
    return tmp_path / "dates"


def test_translations_dir_from_environment(words_dir: Path) -> None:
    (words_dir / "en.yaml").write_text("dateparser: en\nrelative_days: {manyana: 1}\n",
                                       encoding="utf-8")
    when = parse_when("manyana", "en", now_in("en"))
    assert when is not None and when.at.date() == date(2026, 12, 1)


def test_dateparser_takes_what_the_word_list_lacks(words_dir: Path) -> None:
    # "friday" is unknown here, so only dateparser can finish "next friday".
    (words_dir / "en.yaml").write_text("dateparser: en\nnext: [next]\n", encoding="utf-8")
    now = now_in("en")
    day = parse_when("next friday", "en", now)
    assert day is not None and not day.has_time and day.at.weekday() == 4
    timed = parse_when("next friday at 3pm", "en", now)
    assert timed is not None and timed.has_time and timed.at.hour == 15
    assert parse_when("next week", "en", now) is None      # not a day


@pytest.mark.parametrize("bad", [
    "dateparser: en\nrelative_days: {hoy: 0}\nweekdays: {hoy: 1}\n",   # two meanings
    "dateparser: en\nfillers: [the, on]\n",                             # on = True in YAML
    "dateparser: en\nweekdays: {funday: 9}\n",
    "dateparser: en\nperiods: {arvo: teatime}\n",
    "dateparser: en\nwekdays: {monday: 0}\n",                           # misspelt section
    "relative_days: {today: 0}\n",                                      # no dateparser code
])
def test_word_list_mistakes_are_reported(words_dir: Path, bad: str) -> None:
    (words_dir / "en.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(ValueError):
        parse_when("today", "en", now_in("en"))


def test_creole_reads_through_french(words_dir: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "translations" / "dates"
    shutil.copy(shipped / "fr.yaml", words_dir / "fr.yaml")
    (words_dir / "ht.yaml").write_text("base: fr\nrewrite: {dimen: demain}\n", encoding="utf-8")
    when = parse_when("dimen a 15h", "ht", now_in("ht"))
    assert when is not None and when.at.date() == date(2026, 12, 1)
