"""bot.i18n at run time: which language, which catalog, dates and plurals in words."""

from __future__ import annotations

import os
import unicodedata
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.support import Translations

from bot import i18n
from bot.engine import runner
from bot.engine.events import MessageCreated
from bot.engine.runner import Reply
from bot.engine.segments import non_gsm_chars
from bot.engine.session import Participant
from bot.i18n_catalogs import read_catalog, render
from bot.simulator import load_flows

from .conftest import Project

# ---- which language ---------------------------------------------------------------------------


@pytest.mark.parametrize(("requested", "expected"), [
    ("es", "es"), ("es-MX", "es"), ("es_MX", "es"), ("ES-mx", "es"),
    ("pt", "pt"), ("pt-BR", "pt"), ("pt_BR", "pt"),
    ("zh-Hans-CN", "zh"), ("ar-EG", "ar"), ("ht-HT", "ht"),
])
def test_regional_tags_reach_the_language(requested: str, expected: str) -> None:
    assert i18n.negotiate(requested) == expected


def test_an_unsupported_language_falls_back_to_the_study_default() -> None:
    assert i18n.negotiate("de-DE", "es") == "es"
    assert i18n.negotiate(None, "fr") == "fr"
    assert i18n.negotiate("", "pt-BR") == "pt"
    assert i18n.negotiate("de", "xx") == "en"  # an unusable default: the source language
    assert i18n.negotiate("de", "") == ""  # callers that must tell "unsupported" apart


def test_regional_tags_load_the_language_catalog(project: Project) -> None:
    es, mx = i18n.localizer("es"), i18n.localizer("es-MX")
    assert mx is es and mx.language == "es"
    assert i18n.localizer("pt-BR").language == "pt"
    assert i18n.localizer("de", default="ar").language == "ar"
    assert i18n.localizer("es").translate("system:word.yes", "yes") == "sí"


def test_a_missing_catalog_is_an_error_not_english(project: Project) -> None:
    project.po("sw").unlink()
    with pytest.raises(i18n.CatalogMissing, match="sw"):
        i18n.localizer("sw")
    # What babel alone would do, and why bot.i18n does not use it: no error, English text.
    fallback = Translations.load(str(project.translations), ["sw"])
    assert fallback.pgettext("system:word.yes", "yes") == "yes"


def test_a_language_switch_takes_effect_on_the_next_message(project: Project) -> None:
    flow = load_flows(project.flows)["daily_checkin"]
    who = Participant(id="p1", language="en", timezone="America/New_York")
    now = datetime(2026, 3, 2, 13, 30, tzinfo=UTC)
    session, events = runner.start(flow, who, now, i18n.catalogs)
    first = [e for e in events if isinstance(e, MessageCreated)]
    assert first[0].language == "en" and first[0].text.startswith("Hello! How do you feel")
    session, events = runner.resume(flow, session, who, Reply("ESPAÑOL"), now, i18n.catalogs)
    (again,) = [e for e in events if isinstance(e, MessageCreated)]
    assert again.language == "es" and again.text.startswith("¡Hola! ¿Cómo se siente hoy?")
    session, events = runner.resume(flow, session, who, Reply("7"), now, i18n.catalogs)
    (meds,) = [e for e in events if isinstance(e, MessageCreated)]
    assert meds.text == "¿Tomó hoy su medicamento del estudio? Responda SÍ o NO."


# ---- dates in words -----------------------------------------------------------------------


def _localizer(lang: str) -> i18n.CatalogLocalizer:
    return i18n.localizer(lang)


@pytest.mark.parametrize(("lang", "when", "has_time", "expected"), [
    ("en", datetime(2026, 3, 3, 15, 0), True, "Tuesday, March 3, 3:00 PM"),  # plain space
    ("es", datetime(2026, 3, 3, 15, 0), True, "martes, 3 de marzo, 15:00"),
    ("fr", datetime(2026, 3, 3, 15, 0), True, "mardi 3 mars, 15:00"),
    ("pt", datetime(2026, 3, 3, 9, 30), True, "terça-feira, 3 de março 09:30"),
    ("sw", datetime(2026, 12, 1, 15, 0), True, "Jumanne, 1 Desemba 15:00"),
    ("ar", datetime(2026, 12, 1, 15, 0), True, "الثلاثاء، 1 ديسمبر، 3:00 م"),
    ("zh", datetime(2026, 12, 1, 15, 0), True, "12月1日星期二 15:00"),
    ("vi", datetime(2026, 12, 1, 15, 0), False, "Thứ Ba, 1 tháng 12"),
    ("vi", datetime(2026, 12, 1, 15, 0), True, "15:00 Thứ Ba, 1 tháng 12"),
    ("es", datetime(2026, 12, 1, 15, 0), False, "martes, 1 de diciembre"),
])
def test_dates_in_each_language(project: Project, lang: str, when: datetime, has_time: bool,
                                expected: str) -> None:
    assert _localizer(lang).format_when(when, has_time) == expected


def test_creole_days_and_months_come_from_the_names_file(project: Project) -> None:
    ht = _localizer("ht")
    assert ht.format_when(datetime(2026, 12, 1, 15, 0), True) == "madi 1 desanm, 15:00"
    assert ht.format_when(datetime(2026, 3, 8), False) == "dimanch 8 mas"
    assert ht.format_when(datetime(2026, 8, 5), False) == "mèkredi 5 out"
    # babel alone would write French.
    assert i18n.CatalogLocalizer("ht", Translations(), "x").format_when(
        datetime(2026, 12, 1), False) == "mardi 1 décembre"


def test_creole_without_its_names_file_is_an_error(project: Project) -> None:
    (project.translations / "calendar" / "ht.yaml").unlink()
    with pytest.raises(i18n.CalendarMissing):
        i18n.localizer("ht")
    assert issubclass(i18n.CalendarMissing, i18n.CatalogMissing)  # the shell's fallback catches it


def test_times_stay_in_the_participant_s_zone(project: Project) -> None:
    # The engine passes participant-local times; babel must not move them to UTC.
    local = datetime(2026, 3, 10, 9, 30, tzinfo=ZoneInfo("America/Mexico_City"))
    assert _localizer("es").format_when(local, True) == "martes, 10 de marzo, 9:30"
    tokyo = datetime(2026, 3, 10, 23, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert _localizer("en").format_when(tokyo, True) == "Tuesday, March 10, 11:30 PM"


def _non_gsm_besides_letters(text: str) -> list[str]:
    return [c for c in non_gsm_chars(text) if not c.isalpha()]  # "ç" is the language's own


@pytest.mark.parametrize("language", ["en", "es", "fr", "pt", "ht"])
def test_dates_and_numbers_add_no_characters_outside_gsm_7(
        project: Project, language: str) -> None:
    """One character outside GSM-7 makes the whole SMS UCS-2: 70 characters a segment, not
    160. CLDR's narrow no-break spaces ("9:30\u202fAM", "1\u202f234") would do that."""
    loc = _localizer(language)
    for hour in (0, 9, 12, 15, 23):
        when = datetime(2026, 3, 10, hour, 30, tzinfo=ZoneInfo("America/New_York"))
        assert _non_gsm_besides_letters(loc.format_when(when, True)) == []
    assert _non_gsm_besides_letters(loc.format_number(1234567.5)) == []
    if language == "en":
        assert non_gsm_chars(loc.format_when(datetime(2026, 3, 10, 9, 30), True)) == []


def test_numbers_in_the_participant_s_locale(project: Project) -> None:
    assert _localizer("es").format_number(12345.5) == "12.345,5"
    assert _localizer("fr").format_number(1234.5) == "1 234,5"  # a plain space: GSM-7
    assert _localizer("en").format_number(1234.5) == "1,234.5"


# ---- plurals ------------------------------------------------------------------------------

ARABIC_DAYS = ("لا أيام", "يوم واحد", "يومان", "{n} أيام", "{n} يومًا", "{n} يوم")


def test_arabic_has_six_plural_forms(project: Project) -> None:
    path = project.po("ar")
    catalog = read_catalog(path, "ar")
    assert catalog.num_plurals == 6
    catalog.add(("{n} day", "{n} days"), ARABIC_DAYS, context="test:days")
    path.write_bytes(render(catalog))
    result = project.bot("compile", "--lang", "ar")
    assert result.exit_code == 0, result.output
    ar = i18n.localizer("ar")
    forms = [ar.ngettext("test:days", "{n} day", "{n} days", n) for n in (0, 1, 2, 3, 11, 100)]
    assert tuple(forms) == ARABIC_DAYS
    assert ar.ngettext("test:days", "{n} day", "{n} days", 103) == "{n} أيام"  # n % 100 in 3..10
    en = i18n.localizer("en")
    assert en.ngettext("test:days", "{n} day", "{n} days", 1) == "{n} day"
    assert en.ngettext("test:days", "{n} day", "{n} days", 0) == "{n} days"


# ---- catalogs as files --------------------------------------------------------------------


def test_compiled_and_uncompiled_catalogs_read_the_same(project: Project) -> None:
    from_po = i18n.localizer("fr")
    text = from_po.translate("daily_checkin:meds:ask", "Did you take your study medicine today? "
                             "Reply YES or NO.")
    assert text != "Did you take your study medicine today? Reply YES or NO."
    result = project.bot("compile")
    assert result.exit_code == 0 and "fr/LC_MESSAGES/messages.mo: compiled" in result.output
    assert project.bot("compile", "--quiet").output == ""
    i18n.clear_cache()
    from_mo = i18n.localizer("fr")
    assert from_mo.revision == from_po.revision  # answers record the same catalog revision
    assert from_mo.translate("daily_checkin:meds:ask", "Did you take your study medicine "
                             "today? Reply YES or NO.") == text


def test_an_edited_po_wins_over_an_older_mo(project: Project) -> None:
    project.bot("compile")
    project.set_string("es", "system:word.yes", "claro")
    mo = project.po("es").with_suffix(".mo")
    po_time = project.po("es").stat().st_mtime
    os.utime(mo, (po_time - 10, po_time - 10))
    i18n.clear_cache()
    assert i18n.localizer("es").translate("system:word.yes", "yes") == "claro"


def test_fuzzy_translations_are_not_shown(project: Project) -> None:
    path = project.po("es")
    catalog = read_catalog(path, "es")
    (message,) = [m for m in catalog if m.context == "system:word.yes"]
    message.flags.add("fuzzy")
    path.write_bytes(render(catalog))
    assert i18n.localizer("es").translate("system:word.yes", "yes") == "yes"


# ---- right-to-left text -------------------------------------------------------------------

_BIDI_CONTROLS = {"\u200e", "\u200f", "\u061c", *map(chr, range(0x202A, 0x202F)),
                  *map(chr, range(0x2066, 0x206A))}


def test_arabic_is_stored_and_sent_as_written(project: Project) -> None:
    source = "Did you take your study medicine today? Reply YES or NO."
    (message,) = [m for m in read_catalog(project.po("ar"), "ar")
                  if m.context == "daily_checkin:meds:ask"]
    shipped = str(message.string)
    assert unicodedata.bidirectional(shipped[0]) == "AL"
    assert i18n.localizer("ar").translate("daily_checkin:meds:ask", source) == shipped
    project.bot("compile", "--lang", "ar")
    i18n.clear_cache()
    assert i18n.localizer("ar").translate("daily_checkin:meds:ask", source) == shipped

    flow = load_flows(project.flows)["daily_checkin"]
    who = Participant(id="p1", language="ar", timezone="Asia/Amman")
    now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    session, _ = runner.start(flow, who, now, i18n.catalogs)
    _, events = runner.resume(flow, session, who, Reply("٧"), now, i18n.catalogs)
    (sent,) = [e.text for e in events if isinstance(e, MessageCreated)]
    assert sent == shipped
    assert not set(sent) & _BIDI_CONTROLS


def test_no_catalog_carries_invisible_direction_marks(project: Project) -> None:
    for lang in ("ar", "en", "es", "fr", "ht", "pt", "sw", "vi", "zh"):
        catalog: Catalog = read_catalog(project.po(lang), lang)
        for message in catalog:
            assert not set(str(message.string)) & _BIDI_CONTROLS, (lang, message.context)
