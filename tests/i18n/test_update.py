"""`bot translations update`: merge by msgctxt, never lose a translator's work."""

from __future__ import annotations

from bot.i18n_catalogs import read_catalog, stamp
from bot.i18n_extract import source_sha

from .conftest import Project

THANKS = "daily_checkin:thanks:send"


def _strings(project: Project, lang: str) -> dict[str | None, object]:
    return {m.context: m.string for m in read_catalog(project.po(lang), lang) if m.id}


def test_update_twice_changes_nothing(project: Project) -> None:
    before = {lang: project.po(lang).read_bytes() for lang in ("es", "ar", "zh")}
    result = project.bot("update")
    assert result.exit_code == 0, result.output
    assert "es/LC_MESSAGES/messages.po: unchanged" in result.output
    assert {lang: project.po(lang).read_bytes() for lang in before} == before


def test_current_translations_carry_the_hash_of_their_source(project: Project) -> None:
    for message in read_catalog(project.po("sw"), "sw"):
        if message.id:
            assert stamp(message) == source_sha(str(message.id)), message.context


def test_a_new_text_is_added_empty_and_others_are_untouched(project: Project) -> None:
    before = _strings(project, "ht")
    project.edit_flow("daily_checkin.yaml", "    reprompt: We have not heard from you. Did",
                      "    hint: Reply YES or NO, please.\n"
                      "    reprompt: We have not heard from you. Did")
    project.bot("update")
    after = _strings(project, "ht")
    assert after.pop("daily_checkin:meds:hint") == ""
    assert after == before


def test_a_removed_text_becomes_obsolete_and_comes_back_translated(project: Project) -> None:
    project.edit_flow("visit_reminder.yaml",
                      "    send: Thank you! See you then. If your plans change, please tell us.\n",
                      "")
    project.bot("update")
    es = read_catalog(project.po("es"), "es")
    assert "visit_reminder:confirmed:send" not in {m.context for m in es}
    assert any(m.context == "visit_reminder:confirmed:send" for m in es.obsolete.values())
    assert '#~ msgctxt "visit_reminder:confirmed:send"' in project.po("es").read_text("utf-8")
    # Put back as it was: the translation is reused as it is.
    project.edit_flow("visit_reminder.yaml", "    end: confirmed\n",
                      "    end: confirmed\n    send: Thank you! See you then. If your plans "
                      "change, please tell us.\n")
    project.bot("update")
    assert _strings(project, "es")["visit_reminder:confirmed:send"] == \
        "¡Gracias! Nos vemos ese día. Si cambian sus planes, avísenos, por favor."


def test_the_previous_source_survives_a_second_update(project: Project) -> None:
    project.edit_flow("daily_checkin.yaml", "That is all for today.", "That is all.")
    project.bot("update")
    project.edit_flow("daily_checkin.yaml", "That is all.", "That is everything for today.")
    project.bot("update")
    (message,) = [m for m in read_catalog(project.po("pt"), "pt") if m.context == THANKS]
    assert message.fuzzy
    # Still the text the translation was made from, not the intermediate one.
    assert message.previous_id == ["Thank you! That is all for today. Reply HELP if you need help."]
    text = project.po("pt").read_text("utf-8")
    assert '#| msgid "Thank you! That is all for today. Reply HELP if you need help."' in text


def test_a_new_catalog_is_created_only_when_asked(project: Project) -> None:
    project.po("vi").unlink()
    project.bot("update")
    assert not project.po("vi").exists()
    result = project.bot("update", "--lang", "vi")
    assert result.exit_code == 0 and "created" in result.output
    vi = read_catalog(project.po("vi"), "vi")
    assert vi.num_plurals == 1 and all(m.string == "" for m in vi if m.id)
    assert "vi: missing" in project.bot("check").output


def test_the_english_catalog_follows_the_source(project: Project) -> None:
    project.edit_flow("daily_checkin.yaml", "That is all for today.", "That is all.")
    project.bot("update")
    assert _strings(project, "en")[THANKS] == "Thank you! That is all. Reply HELP if you need help."
    assert not [f for f in project.bot("check", "--lang", "en").output.splitlines()
                if ": en: " in f]
