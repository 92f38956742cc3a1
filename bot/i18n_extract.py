"""Find every participant-facing string, for `translations/messages.pot` and `bot translations`.

The source text never leaves the flow files and the bot's own message tables: this module
reads them and describes each string for translators (what it is, what its placeholders
stand for, how long it may be). Two babel extractors are built on it, so `pybabel extract`
gives the same messages as `bot translations extract`:

- `extract_flow` reads one flow file (registered as the `trialbot_flow` entry point);
- `extract_system` reads the Python modules that hold the bot's own texts (dictionaries
  such as `SYSTEM_TEXTS`, and `translate(system_context(...), ...)` calls).

Each message carries an extracted comment `source-sha: <8 hex>`, a hash of its source text.
Catalogs record the hash they were confirmed against (`# translated-from:`), which is how
`bot translations check` tells a stale translation from a current one although the msgctxt
of a changed question stays the same.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Literal

from babel.messages.catalog import Catalog

from .engine.check import DEFAULT_SEGMENT_BUDGET, load_study
from .engine.flow import Flow, Step, Text
from .engine.loader import flow_files, load_flow_text
from .engine.problems import Problem
from .engine.segments import GSM_MULTI, GSM_SINGLE, UCS2_MULTI, UCS2_SINGLE

ROOT = Path(__file__).resolve().parents[1]

#: The Python modules holding the bot's own participant-facing texts, relative to ROOT.
SYSTEM_SOURCES: tuple[str, ...] = (
    "bot/engine/system_texts.py",
    "bot/system_messages.py",
    "bot/engine/runner.py",
)
#: Module-level dictionaries (key -> English text) read by `extract_system`.
SYSTEM_DICTS: tuple[str, ...] = ("SYSTEM_TEXTS", "SYSTEM_MESSAGES")
#: YAML comments starting with one of these, right above a text, reach the translator.
COMMENT_TAGS: tuple[str, ...] = ("Translators:", "TRANSLATORS:")

SHA_TAG = "source-sha:"
SHA_LEN = 8

# Placeholders the engine fills (bot/engine/runner.py), and anything in braces.
PLACEHOLDER_RE = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)\}")
BRACES_RE = re.compile(r"\{[^{}\n]*\}")
# Capitalised reply words a participant is told to type.
_REPLY_WORDS = re.compile(r"\b(YES|NO|STOP|START|HELP)\b")

PlaceholderKind = Literal["date", "datetime", "number", "word", "text"]


def source_sha(text: str) -> str:
    """A short hash of a source text: it changes whenever the text does."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:SHA_LEN]


def placeholders(text: str) -> set[str]:
    """Everything written in braces, as it appears (`{params.visit_at}`)."""
    return set(BRACES_RE.findall(text))


@dataclass(frozen=True, slots=True)
class SourceText:
    """One translatable string and what translators and `check` need to know about it."""

    context: str
    msgid: str
    path: str  # as shown in the catalogs' `#:` lines, e.g. flows/daily_checkin.yaml
    line: int
    notes: tuple[str, ...] = ()
    budget: int = DEFAULT_SEGMENT_BUDGET
    #: placeholder name -> what it is, to judge lengths with realistic values
    kinds: tuple[tuple[str, PlaceholderKind], ...] = ()
    #: contexts of the numbered choices sent in the same message as this question
    choices: tuple[str, ...] = ()
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", source_sha(self.msgid))

    @property
    def comments(self) -> list[str]:
        return [f"{SHA_TAG} {self.sha}", *self.notes]

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


class ExtractError(Exception):
    """A source cannot be read: its problems must be fixed before extracting."""

    def __init__(self, problems: Sequence[Problem | str]) -> None:
        self.problems = [str(p) for p in problems]
        super().__init__("\n".join(self.problems))


# ---- what placeholders and fields mean ----------------------------------------------------

_EXAMPLE_DAY = "Tuesday, March 3"
_FIELD_NOTES = {
    "ask": "A question.",
    "send": "",
    "hint": "Sent when the bot did not understand the reply to this question.",
    "reprompt": "A reminder, sent when there is no reply to this question.",
}
_SYSTEM_NOTES = {
    "hint.": "Sent when the bot did not understand a reply.",
    "confirm.when": "Reads back the date the participant wrote, to confirm it.",
    "confirm.again": "Sent when the participant says the date read back is wrong.",
    "word.": "Used where the bot repeats a yes/no answer inside a sentence (lowercase).",
}
_SYSTEM_PLACEHOLDERS: dict[str, tuple[PlaceholderKind, str]] = {
    "min": ("number", "the lowest number allowed"),
    "max": ("number", "the highest number allowed"),
    "when": ("datetime", f'a date, or a date and time, in words, e.g. "{_EXAMPLE_DAY}, 15:00"'),
    "contact": ("text", "the study team's phone number"),
}
_ANSWER_KINDS: dict[str, tuple[PlaceholderKind, str]] = {
    "date": ("date", f'a date in words, e.g. "{_EXAMPLE_DAY}"'),
    "datetime": ("datetime", f'a date and time in words, e.g. "{_EXAMPLE_DAY}, 15:00"'),
    "yes_no": ("word", "the word yes or no"),
    "number": ("number", "a number"),
    "scale": ("number", "a number"),
    "choice": ("text", "the chosen option"),
    "multi_choice": ("text", "the chosen options"),
    "text": ("text", "the participant's own words"),
}


def _param_kind(name: str) -> tuple[PlaceholderKind, str]:
    # Parameters are untyped: by convention (docs/translators.md) `_at` names a date and time.
    if name.endswith("_at"):
        return _ANSWER_KINDS["datetime"]
    if name.endswith(("_on", "_date")):
        return _ANSWER_KINDS["date"]
    return "text", "a value given when the flow starts"


def describe_placeholder(name: str, flow: Flow | None = None,
                         step: Step | None = None) -> tuple[PlaceholderKind, str]:
    """What `{name}` will be replaced with, in words for translators."""
    if flow is None:
        return _SYSTEM_PLACEHOLDERS.get(name, ("text", "filled in by the bot"))
    root, _, rest = name.partition(".")
    key = rest if root == "answers" else None
    if name == "answer" and step is not None:
        key = step.save_as or step.id
    if key is not None:
        asked = flow.answer_keys().get(key)
        if asked is not None and asked.answer is not None:
            return _ANSWER_KINDS[asked.answer.type]
        return "text", "an earlier answer"
    if root == "params":
        return _param_kind(rest)
    if name == "participant.first_name":
        return "text", "the participant's first name"
    if root == "participant":
        return "text", "a detail about the participant"
    return "text", "filled in by the bot"


def _budget_note(budget: int, with_choices: bool) -> str:
    gsm = GSM_SINGLE if budget == 1 else budget * GSM_MULTI
    ucs = UCS2_SINGLE if budget == 1 else budget * UCS2_MULTI
    what = "With its numbered choices (one message): at most" if with_choices else "At most"
    return (f"{what} {budget} SMS: {gsm} characters, or {ucs} if any letter is outside the "
            "GSM SMS alphabet (á í ó ú ç ã, Arabic, Chinese, Vietnamese...).")


def _notes(text: str, field_note: str, kinds: dict[str, tuple[PlaceholderKind, str]],
           budget: int | None, with_choices: bool, tagged: Sequence[str] = ()) -> tuple[str, ...]:
    notes = [*tagged]
    if field_note:  # "" for a plain message: nothing to explain
        notes.append(field_note)
    for name, (_, meaning) in kinds.items():
        notes.append(f"{{{name}}} is {meaning}; keep it exactly as written.")
    if _REPLY_WORDS.search(text):
        notes.append("Words in capitals are replies the participant types: use words the bot "
                     "understands in your language (translations/words/<lang>.yaml).")
    if budget is not None:  # None: part of another message (an option, a word)
        notes.append(_budget_note(budget, with_choices))
    return tuple(notes)


# ---- flows --------------------------------------------------------------------------------


def _tagged_comments(lines: Sequence[str], line: int, tags: Iterable[str]) -> list[str]:
    """`# Translators: ...` comment lines right above `line` (1-based), tag removed."""
    out: list[str] = []
    i = line - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        body = lines[i].strip().lstrip("#").strip()
        for tag in tags:
            if body.startswith(tag):
                out.insert(0, body[len(tag):].strip())
        i -= 1
    return out


def flow_texts(flow: Flow, display_path: str, *, study_budget: int = DEFAULT_SEGMENT_BUDGET,
               source: str = "", comment_tags: Iterable[str] = COMMENT_TAGS) -> list[SourceText]:
    """Every translatable text of a flow, step by step in file order."""
    budget = flow.segment_budget or study_budget
    lines = source.splitlines()
    tags = tuple(comment_tags)
    out: list[SourceText] = []
    for step in flow.steps:
        choices = step.answer.choices if step.answer is not None else ()
        shown = bool(choices) and step.answer is not None and step.answer.show_choices
        texts: list[tuple[Text, str, tuple[str, ...]]] = []
        if step.text is not None:
            main = "The last message of this conversation." if step.kind == "end" \
                else _FIELD_NOTES.get(step.kind, "")
            joined = tuple(c.label.context for c in choices) if shown else ()
            texts.append((step.text, main, joined))
        for text, key in ((step.hint, "hint"), (step.reprompt, "reprompt")):
            if text is not None:
                texts.append((text, _FIELD_NOTES[key], ()))
        option = ("An answer option, shown numbered under the question: keep it short."
                  if shown else "An answer option (not shown; matched in replies).")
        texts.extend((choice.label, option, ()) for choice in choices)
        for text, note, joined in sorted(texts, key=lambda t: t[0].line):
            kinds = {m.group(1): describe_placeholder(m.group(1), flow, step)
                     for m in PLACEHOLDER_RE.finditer(text.source)}
            tagged = _tagged_comments(lines, text.line, tags) if lines and tags else []
            out.append(SourceText(
                context=text.context, msgid=text.source, path=display_path, line=text.line,
                notes=_notes(text.source, note, kinds,
                             None if ":choice." in text.context else budget, bool(joined),
                             tagged),
                budget=budget, kinds=tuple((k, v[0]) for k, v in kinds.items()),
                choices=joined))
    return out


def _load_flow(source: str, path: str) -> Flow | None:
    flow, problems = load_flow_text(source, path)
    errors = [p for p in problems if p.level == "error"]
    if errors:
        raise ExtractError(errors)
    return flow


def _is_flow(source: str) -> bool:
    # `pybabel extract` maps a glob of YAML files: study.yaml has no steps.
    return bool(re.search(r"^steps\s*:", source, re.MULTILINE))


def extract_flow(fileobj: IO[bytes], keywords: Iterable[str], comment_tags: Iterable[str],
                 options: dict[str, Any]) -> Iterator[tuple[int, str, tuple[str, str],
                                                           list[str]]]:
    """Babel extractor for flow files: yields `(line, "pgettext", (msgctxt, msgid), comments)`.

    Options: `segment_budget` (else the flow's own, else study.yaml beside the file).
    A flow with errors raises `ExtractError`: run `bot flows check` first.
    """
    source = fileobj.read().decode("utf-8")
    name = str(getattr(fileobj, "name", "<flow>"))
    if not _is_flow(source):
        return
    flow = _load_flow(source, name)
    if flow is None:
        return
    budget = options.get("segment_budget")
    if budget is None and name != "<flow>":
        study, _ = load_study(Path(name).parent)
        budget = study.segment_budget if study else None
    tags = tuple(comment_tags) or COMMENT_TAGS
    for text in flow_texts(flow, name, study_budget=int(budget or DEFAULT_SEGMENT_BUDGET),
                           source=source, comment_tags=tags):
        yield text.line, "pgettext", (text.context, text.msgid), text.comments


# ---- the bot's own texts ------------------------------------------------------------------


def _strings(node: ast.expr) -> list[str] | None:
    """A constant string, or both branches of `"a" if x else "b"`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _strings(node.body), _strings(node.orelse)
        if body is not None and orelse is not None:
            return body + orelse
    return None


def _context_arg(node: ast.expr) -> list[str] | None:
    """The keys in `system_context(...)` / `context(...)`."""
    if isinstance(node, ast.Call) and node.args and (
            isinstance(node.func, ast.Name) and node.func.id in ("system_context", "context")):
        return _strings(node.args[0])
    return None


def system_pairs(source: str, dicts: Sequence[str] = SYSTEM_DICTS) -> list[tuple[int, str, str]]:
    """`(line, key, English text)` for each system text defined in a module's source."""
    tree = ast.parse(source)
    out: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        if isinstance(target, ast.Name) and target.id in dicts and isinstance(value, ast.Dict):
            for k, v in zip(value.keys, value.values, strict=True):
                if isinstance(k, ast.Constant) and isinstance(k.value, str) \
                        and isinstance(v, ast.Constant) and isinstance(v.value, str):
                    out.append((v.lineno, k.value, v.value))
        # e.g. loc.translate(system_context("word.yes" if v else "word.no"), "yes" if v else "no")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "translate" and len(node.args) == 2:
            keys, texts = _context_arg(node.args[0]), _strings(node.args[1])
            if keys and texts and len(keys) == len(texts):
                out.extend((node.lineno, k, t) for k, t in zip(keys, texts, strict=True))
    return sorted(out, key=lambda item: item[0])  # by line; stable within one call


def system_texts(source: str, display_path: str, *, budget: int = DEFAULT_SEGMENT_BUDGET,
                 dicts: Sequence[str] = SYSTEM_DICTS) -> list[SourceText]:
    out: list[SourceText] = []
    for line, key, text in system_pairs(source, dicts):
        note = next((n for prefix, n in _SYSTEM_NOTES.items() if key.startswith(prefix)),
                    "A message from the bot itself, not from a flow.")
        kinds = {m.group(1): describe_placeholder(m.group(1))
                 for m in PLACEHOLDER_RE.finditer(text)}
        out.append(SourceText(
            context=f"system:{key}", msgid=text, path=display_path, line=line,
            notes=_notes(text, note, kinds, None if key.startswith("word.") else budget, False),
            budget=budget,
            kinds=tuple((k, v[0]) for k, v in kinds.items())))
    return out


def extract_system(fileobj: IO[bytes], keywords: Iterable[str], comment_tags: Iterable[str],
                   options: dict[str, Any]) -> Iterator[tuple[int, str, tuple[str, str],
                                                             list[str]]]:
    """Babel extractor for the bot's own texts in Python modules (msgctxt `system:<key>`).

    Options: `dicts` (comma-separated dictionary names), `segment_budget`.
    """
    dicts = tuple(d.strip() for d in str(options.get("dicts") or ",".join(SYSTEM_DICTS))
                  .split(",") if d.strip())
    budget = int(options.get("segment_budget") or DEFAULT_SEGMENT_BUDGET)
    source = fileobj.read().decode("utf-8")
    name = str(getattr(fileobj, "name", "<python>"))
    for text in system_texts(source, name, budget=budget, dicts=dicts):
        yield text.line, "pgettext", (text.context, text.msgid), text.comments


# ---- the whole study ----------------------------------------------------------------------


def collect(flows_dir: Path, root: Path = ROOT,
            system_sources: Sequence[str] = SYSTEM_SOURCES) -> list[SourceText]:
    """Every translatable string: flows first (file by file), then the bot's own texts.

    Raises `ExtractError` if a flow has errors or two strings share a msgctxt.
    """
    study, study_problems = load_study(flows_dir)
    errors: list[Problem | str] = [p for p in study_problems if p.level == "error"]
    budget = study.segment_budget if study else DEFAULT_SEGMENT_BUDGET
    out: list[SourceText] = []
    for path in flow_files([flows_dir]):
        shown = f"{flows_dir.name}/{path.name}"
        source = path.read_text(encoding="utf-8")
        if not _is_flow(source):
            continue
        try:
            flow = _load_flow(source, str(path))
        except ExtractError as exc:
            errors.extend(exc.problems)
            continue
        if flow is not None:
            out.extend(flow_texts(flow, shown, study_budget=budget, source=source))
    for rel in system_sources:
        out.extend(system_texts((root / rel).read_text(encoding="utf-8"), rel, budget=budget))
    seen: dict[str, SourceText] = {}
    for text in out:
        other = seen.setdefault(text.context, text)
        if other is not text and other.msgid != text.msgid:
            errors.append(f"{text.location}: msgctxt `{text.context}` is already used at "
                          f"{other.location} for another text")
    if errors:
        raise ExtractError(errors)
    # The same text under the same context (e.g. one key read twice) is one message.
    return list({(t.context, t.msgid): t for t in out}.values())


def version() -> str:
    try:
        return metadata.version("trialbot")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


POT_HEADER = (
    "Participant-facing texts of the study flows and of the bot itself.\n"
    "Made by `bot translations extract` from flows/*.yaml and the bot's message tables:\n"
    "do not edit. Translators: see docs/translators.md."
)


def template(sources: Sequence[SourceText],
             created: datetime | None = None) -> Catalog:
    """The `.pot` catalog for `sources`, in their order."""
    cat = Catalog(project="trialbot", version=version(), copyright_holder="",
                  msgid_bugs_address="study-team@example.org", charset="utf-8",
                  creation_date=created or datetime.now(UTC),
                  header_comment="\n".join(f"# {line}" for line in POT_HEADER.splitlines()))
    for text in sources:
        cat.add(text.msgid, locations=[(text.path, text.line)], auto_comments=text.comments,
                context=text.context)
    return cat


__all__ = [
    "COMMENT_TAGS", "ExtractError", "SourceText", "collect", "describe_placeholder",
    "extract_flow", "extract_system", "flow_texts", "placeholders", "source_sha",
    "system_texts", "template",
]
