"""`bot translations check`: every way a participant could get a wrong or missing text."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot import i18n
from bot.cli import main
from bot.engine.languages import SUPPORTED
from bot.i18n_catalogs import Finding, check, read_catalog, render, stamp

from .conftest import ROOT, Project

WELLBEING = "daily_checkin:wellbeing:ask"
OLD_ASK = ("Hello! How do you feel today? Reply with a number from 0 to 10. "
           "0 means very bad, 10 means very good.")
NEW_ASK = ("Hello! How are you feeling today? Reply with a number from 0 to 10. "
           "0 means very bad, 10 means very good.")


def findings(project: Project, *languages: str) -> list[Finding]:
    return check(project.translations, project.sources(), languages or SUPPORTED)


def test_the_completed_copy_passes(project: Project) -> None:
    result = project.bot("check")
    assert result.exit_code == 0, result.output
    assert "9 catalogs" in result.output and "no problems" in result.output


# ---- a changed source question ------------------------------------------------------------


def test_a_changed_question_is_stale_in_every_language(project: Project) -> None:
    project.edit_flow("daily_checkin.yaml", "How do you feel today?", "How are you feeling today?")
    found = [f for f in findings(project) if f.language != "template"]
    stale = {f.language for f in found if f.kind == "stale" and f.context == WELLBEING}
    assert stale == set(SUPPORTED)
    assert all(f.msgid == NEW_ASK for f in found)
    assert len(found) == len(SUPPORTED)  # nothing else is reported
    # The template is out of date too, until `extract` (or `update`) runs.
    assert any(f.language == "template" and f.kind == "out of date" for f in findings(project))

    result = project.bot("check")
    assert result.exit_code == 1
    for lang in SUPPORTED:
        line = next(x for x in result.output.splitlines() if f": {lang}: stale: " in x)
        assert f"translations/{lang}/LC_MESSAGES/messages.po:" in line
        assert WELLBEING in line and "How are you feeling today?" in line
        assert "How do you feel today?" in line  # what it was translated from


def test_a_changed_question_stays_stale_after_update(project: Project) -> None:
    es_before = {m.context: m.string for m in read_catalog(project.po("es"), "es")}
    project.edit_flow("daily_checkin.yaml", "How do you feel today?", "How are you feeling today?")
    result = project.bot("update")
    assert result.exit_code == 0, result.output
    assert f"review (source changed): {WELLBEING}" in result.output

    found = findings(project)
    assert {f.language for f in found} == set(SUPPORTED) - {"en"}
    assert all(f.kind == "stale" and f.context == WELLBEING for f in found)
    assert all(OLD_ASK[:40] in f.detail for f in found)  # the previous source, from `#| msgid`

    # The old translation is kept as a fuzzy suggestion with the old source beside it.
    es = read_catalog(project.po("es"), "es")
    (message,) = [m for m in es if m.context == WELLBEING]
    assert message.id == NEW_ASK and message.fuzzy
    assert message.previous_id == [OLD_ASK]
    assert message.string == es_before[WELLBEING]
    # The English catalog simply follows the source.
    (en,) = [m for m in read_catalog(project.po("en"), "en") if m.context == WELLBEING]
    assert en.string == NEW_ASK and not en.fuzzy


def test_a_reviewed_translation_is_recorded_by_update(project: Project) -> None:
    project.edit_flow("daily_checkin.yaml", "How do you feel today?", "How are you feeling today?")
    project.bot("update")
    # The translator revises the text and confirms it: the editor drops the fuzzy mark and
    # the previous msgid, but the stamp still names the old source.
    path = project.po("fr")
    catalog = read_catalog(path, "fr")
    (message,) = [m for m in catalog if m.context == WELLBEING]
    old_stamp = stamp(message)
    message.string = "Bonjour ! Comment allez-vous aujourd'hui ? Répondez par un chiffre de 0 à 10."
    message.flags.discard("fuzzy")
    message.previous_id = []
    path.write_bytes(render(catalog))

    (f,) = findings(project, "fr")
    assert f.kind == "stale" and "bot translations update" in f.detail

    project.bot("update")
    assert findings(project, "fr") == []
    (message,) = [m for m in read_catalog(path, "fr") if m.context == WELLBEING]
    assert stamp(message) != old_stamp


# ---- missing, fuzzy, placeholders, length ----------------------------------------------------


def test_a_deleted_swahili_translation_is_missing(project: Project) -> None:
    path = project.po("sw")
    catalog = read_catalog(path, "sw")
    (gone,) = [m for m in catalog if m.context == "daily_checkin:meds:ask"]
    catalog.delete(gone.id, gone.context)
    path.write_bytes(render(catalog))

    (f,) = findings(project)
    assert (f.language, f.kind, f.context) == ("sw", "missing", "daily_checkin:meds:ask")
    assert f.msgid == "Did you take your study medicine today? Reply YES or NO."
    # Nothing in the catalog to point at: the source line is given instead.
    assert (f.path, f.line) == ("flows/daily_checkin.yaml", 39)

    result = project.bot("check")
    assert result.exit_code == 1
    assert ("flows/daily_checkin.yaml:39: sw: missing: daily_checkin:meds:ask "
            "\"Did you take your study medicine today? Reply YES or NO.\"") in result.output


def test_an_emptied_translation_is_missing_at_its_catalog_line(project: Project) -> None:
    project.set_string("sw", "daily_checkin:meds:ask", "")
    (f,) = findings(project)
    assert (f.language, f.kind) == ("sw", "missing")
    assert f.path.endswith("sw/LC_MESSAGES/messages.po") and f.line > 1
    lines = project.po("sw").read_text(encoding="utf-8").splitlines()
    assert lines[f.line - 1].startswith('msgid "Did you take your study medicine')


def test_a_fuzzy_translation_is_reported(project: Project) -> None:
    path = project.po("pt")
    catalog = read_catalog(path, "pt")
    (message,) = [m for m in catalog if m.context == "daily_checkin:thanks:send"]
    message.flags.add("fuzzy")
    path.write_bytes(render(catalog))
    (f,) = findings(project)
    assert (f.language, f.kind, f.context) == ("pt", "fuzzy", "daily_checkin:thanks:send")


def test_a_spanish_translation_over_the_segment_budget(project: Project) -> None:
    long = ("Todavía no sabemos de usted hoy. " * 7).strip()
    project.set_string("es", "daily_checkin:wellbeing:reprompt", long)
    (f,) = findings(project)
    assert (f.language, f.kind, f.context) == ("es", "too long", "daily_checkin:wellbeing:reprompt")
    # `í` is not in GSM-7: the whole message goes as UCS-2, 67 units per segment.
    assert f.detail.startswith("4 SMS segments (UCS-2, 230 UTF-16 units); the budget is 3")
    assert "UCS-2 because of `í`: without them it would be 2" in f.detail
    result = project.bot("check")
    assert "es: too long: daily_checkin:wellbeing:reprompt" in result.output
    assert "4 SMS segments" in result.output


def test_a_question_is_measured_with_its_numbered_choices(project: Project) -> None:
    # 150 units of question fit three UCS-2 segments alone, not with the nine languages listed.
    project.set_string("es", "onboarding:language:ask", "¿" + "a" * 149)
    (f,) = findings(project)
    assert (f.kind, f.context) == ("too long", "onboarding:language:ask")
    assert f.detail.startswith("with its numbered choices, 4 SMS segments")


def test_dates_are_measured_in_words(project: Project) -> None:
    # {when} becomes the longest date of the year in that language, not ten letters.
    text = "{when}. ¿Es correcto? " + "Responda SÍ o NO. " * 9
    project.set_string("es", "system:confirm.when", text.strip())
    (f,) = findings(project)
    assert (f.kind, f.context) == ("too long", "system:confirm.when")


def test_placeholders_must_match_the_source(project: Project) -> None:
    project.set_string("es", "visit_reminder:attend:ask",
                       "¡Hola! Su próxima visita es el {params.visita}. ¿Puede venir?")
    project.set_string("fr", "system:hint.number", "Répondez par un nombre de {min} à max.")
    es, fr = findings(project)
    assert (es.language, es.kind) == ("es", "placeholders differ")
    assert "missing {params.visit_at}" in es.detail and "unknown {params.visita}" in es.detail
    assert (fr.language, fr.kind, fr.context) == ("fr", "placeholders differ", "system:hint.number")
    assert fr.detail.startswith("missing {max}")


# ---- whole files ----------------------------------------------------------------------------


def test_a_missing_catalog_is_reported(project: Project) -> None:
    project.po("fr").unlink()
    (f,) = findings(project)
    assert (f.language, f.kind) == ("fr", "catalog missing")
    assert f.path.endswith("translations/fr/LC_MESSAGES/messages.po")
    result = project.bot("check")
    assert result.exit_code == 1 and "fr: catalog missing" in result.output
    # ... and the bot does not quietly fall back to English either.
    with pytest.raises(i18n.CatalogMissing):
        i18n.localizer("fr")


def test_a_broken_catalog_is_reported(project: Project) -> None:
    project.po("vi").write_text('msgid "a"\nmsgstr "b"\nnonsense\n', encoding="utf-8")
    (f,) = findings(project)
    assert (f.language, f.kind) == ("vi", "unreadable")


def test_creole_needs_its_day_and_month_names(project: Project) -> None:
    (project.translations / "calendar" / "ht.yaml").unlink()
    (f,) = findings(project)
    assert (f.language, f.kind) == ("ht", "day and month names missing")
    assert f.path.endswith("calendar/ht.yaml")
    (project.translations / "calendar" / "ht.yaml").write_text("weekdays: [lendi]\n",
                                                               encoding="utf-8")
    (f,) = findings(project)
    assert "`weekdays` must list 7 names" in f.detail


def test_the_english_catalog_mirrors_the_source(project: Project) -> None:
    project.set_string("en", "daily_checkin:thanks:send", "Thanks!")
    (f,) = findings(project)
    assert (f.language, f.kind) == ("en", "differs from the source")


def test_a_missing_template_is_reported(project: Project) -> None:
    (project.translations / "messages.pot").unlink()
    (f,) = findings(project)
    assert (f.language, f.kind) == ("template", "missing")
    assert project.bot("extract").exit_code == 0
    assert findings(project) == []


def test_a_broken_flow_stops_the_check(project: Project) -> None:
    project.edit_flow("daily_checkin.yaml", "answer: yes_no", "answer: yesno")
    result = project.bot("check")
    assert result.exit_code == 1
    assert "daily_checkin.yaml" in result.output and "bot flows check" in result.output


def test_only_the_languages_asked_for(project: Project) -> None:
    project.po("fr").unlink()
    result = project.bot("check", "--lang", "es", "--lang", "pt")
    assert result.exit_code == 0 and "2 catalogs" in result.output


def test_a_copy_in_the_working_directory_is_used_whole(project: Project,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # flows/ and translations/ are both taken from here: never one from the shipped project.
    monkeypatch.delenv("TRANSLATIONS_DIR")
    monkeypatch.chdir(project.root)
    project.edit_flow("daily_checkin.yaml", "How do you feel today?", "How are you feeling today?")
    shipped = (ROOT / "translations" / "fr" / "LC_MESSAGES" / "messages.po").read_bytes()
    result = CliRunner().invoke(main, ["translations", "update"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("translations/en/LC_MESSAGES/messages.po: updated")
    assert (ROOT / "translations" / "fr" / "LC_MESSAGES" / "messages.po").read_bytes() == shipped
    assert "fr: stale" in CliRunner().invoke(main, ["translations", "check"]).output
