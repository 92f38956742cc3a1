"""What is extracted for translators, and that babel's own tooling sees the same."""

from __future__ import annotations

import io
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any

import pytest
from babel.messages.extract import extract, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from bot.engine.flow import Flow
from bot.engine.localizer import Localizer
from bot.engine.transcript import parse_transcript, run_transcript
from bot.i18n import catalogs
from bot.i18n_catalogs import check_template, read_catalog, source_sha_of
from bot.i18n_extract import (
    ExtractError,
    collect,
    extract_flow,
    source_sha,
    system_pairs,
)
from bot.simulator import load_flows

from .conftest import ROOT, Project

FLOW = """\
id: demo
version: 1
params: [visit_at]
segment_budget: 2
steps:
  - id: when
    # Translators: "visit" means a visit to the study clinic.
    ask: Your visit is {params.visit_at}. Can you come? Reply YES or NO.
    answer: yes_no
  - id: pick
    ask: Which one?
    answer:
      type: choice
      choices:
        - value: a
          label: The first
        - The second
    hint: Reply 1 or 2.
  - id: done
    end: true
    send: "Thanks {participant.first_name}, you said {answers.when}."
"""


def _extract(text: str, **options: Any) -> list[tuple[int, Any, list[str], str | None]]:
    # By name, as babel's command line finds a `module:function` extraction method.
    return list(extract("bot.i18n_extract:extract_flow", io.BytesIO(text.encode()),
                        options=options))


def test_every_flow_text_has_a_stable_context_and_its_source_hash() -> None:
    found = _extract(FLOW)
    assert [(line, context, msgid) for line, msgid, _, context in found] == [
        (8, "demo:when:ask", "Your visit is {params.visit_at}. Can you come? Reply YES or NO."),
        (11, "demo:pick:ask", "Which one?"),
        (16, "demo:pick:choice.a", "The first"),
        (17, "demo:pick:choice.the_second", "The second"),
        (18, "demo:pick:hint", "Reply 1 or 2."),
        (21, "demo:done:send", "Thanks {participant.first_name}, you said {answers.when}."),
    ]
    for _, msgid, comments, _ in found:
        assert comments[0] == f"source-sha: {source_sha(msgid)}"


def test_translators_get_what_they_need_to_know() -> None:
    by_context = {context: comments for _, _, comments, context in _extract(FLOW)}
    when = by_context["demo:when:ask"]
    assert '"visit" means a visit to the study clinic.' in when  # the coordinator's note
    assert any(c.startswith("{params.visit_at} is a date and time in words") for c in when)
    assert any("translations/words/<lang>.yaml" in c for c in when)  # YES / NO
    assert any(c.startswith("At most 2 SMS: 306 characters, or 134") for c in when)
    assert any(c.startswith("With its numbered choices") for c in by_context["demo:pick:ask"])
    assert "An answer option, shown numbered under the question: keep it short." \
        in by_context["demo:pick:choice.a"]
    done = by_context["demo:done:send"]
    assert "{participant.first_name} is the participant's first name; keep it exactly as " \
        "written." in done
    assert "{answers.when} is the word yes or no; keep it exactly as written." in done


def test_a_study_budget_applies_unless_the_flow_sets_its_own() -> None:
    text = FLOW.replace("segment_budget: 2\n", "")
    comments = _extract(text, segment_budget=1)[0][2]
    assert any(c.startswith("At most 1 SMS: 160 characters, or 70") for c in comments)


def test_a_broken_flow_is_an_error_not_an_empty_list() -> None:
    with pytest.raises(ExtractError, match="unknown answer type"):
        _extract(FLOW.replace("answer: yes_no", "answer: yesno"))


def test_study_settings_are_not_a_flow() -> None:
    assert _extract("name: Demo study\nsegment_budget: 2\n") == []


def test_the_bot_s_own_texts_come_from_its_tables_and_calls() -> None:
    source = (ROOT / "bot/engine/runner.py").read_text(encoding="utf-8")
    assert [(k, t) for _, k, t in system_pairs(source)] == [("word.yes", "yes"),
                                                            ("word.no", "no")]
    found = list(extract("bot.i18n_extract:extract_system",
                         io.BytesIO((ROOT / "bot/engine/system_texts.py").read_bytes())))
    contexts = {context for *_, context in found}
    assert {"system:hint.yes_no", "system:confirm.when"} <= contexts
    when = next(c for _, _, c, ctx in found if ctx == "system:confirm.when")
    assert any(c.startswith("{when} is a date, or a date and time, in words") for c in when)


def test_the_entry_point_is_registered() -> None:
    (ep,) = [e for e in entry_points(group="babel.extractors") if e.name == "trialbot_flow"]
    assert ep.load() is extract_flow


def test_pybabel_with_the_mapping_file_finds_the_same_messages() -> None:
    with (ROOT / "translations" / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)  # type: ignore[no-untyped-call]
    found = {(context, msgid) for _, _, msgid, _, context
             in extract_from_dir(str(ROOT), method_map, options_map)}
    assert found == {(s.context, s.msgid) for s in collect(ROOT / "flows")}


def test_the_shipped_template_is_up_to_date() -> None:
    pot = ROOT / "translations" / "messages.pot"
    sources = collect(ROOT / "flows")
    assert check_template(pot, sources, str(pot)) == []
    template = read_catalog(pot)
    assert all(source_sha_of(m) == source_sha(str(m.id)) for m in template if m.id)
    assert all(m.locations for m in template if m.id)


def test_extract_leaves_an_unchanged_template_alone(project: Project) -> None:
    pot = project.translations / "messages.pot"
    before = pot.read_bytes()
    result = project.bot("extract")
    assert result.exit_code == 0 and "(unchanged)" in result.output
    assert pot.read_bytes() == before
    project.edit_flow("visit_reminder.yaml", "See you then.", "See you soon.")
    assert "(written)" in project.bot("extract").output
    assert b'msgid "Thank you! See you soon.' in pot.read_bytes()


# ---- the engine asks only for extracted texts -----------------------------------------------


class _Recording:
    def __init__(self, inner: Localizer, seen: set[tuple[str, str]]) -> None:
        self.inner, self.seen = inner, seen

    @property
    def language(self) -> str:
        return self.inner.language

    @property
    def revision(self) -> str:
        return self.inner.revision

    def translate(self, context: str, source: str) -> str:
        self.seen.add((context, source))
        return self.inner.translate(context, source)

    def format_when(self, when: datetime, has_time: bool) -> str:
        return self.inner.format_when(when, has_time)


def test_every_text_the_engine_shows_is_in_the_template() -> None:
    flows: dict[str, Flow] = load_flows(ROOT / "flows")
    seen: set[tuple[str, str]] = set()

    def recording(language: str) -> Localizer:
        return _Recording(catalogs(language), seen)

    for path in sorted((ROOT / "tests" / "transcripts").rglob("*.yaml")):
        rel = str(path.relative_to(ROOT))
        run_transcript(parse_transcript(path.read_text(encoding="utf-8"), rel), rel, flows,
                       recording)
    extracted = {(s.context, s.msgid) for s in collect(ROOT / "flows")}
    assert seen - extracted == set()
    # The golden transcripts reach most of it (a sanity check on the recording itself).
    assert len(seen) > len(extracted) // 2


def test_locations_point_at_the_flow_line(project: Project) -> None:
    sources = {s.context: s for s in collect(project.flows)}
    meds = sources["daily_checkin:meds:ask"]
    line = (project.flows / "daily_checkin.yaml").read_text().splitlines()[meds.line - 1]
    assert meds.location == f"flows/daily_checkin.yaml:{meds.line}"
    assert "Did you take your study medicine today?" in line
