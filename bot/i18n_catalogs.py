"""Keep the gettext catalogs in step with the sources: update, compile and check them.

`bot translations` (bot/cli/translations.py) is a thin layer over this module.

How a changed source is noticed (the msgctxt of a question stays the same when its words
change, so the context alone cannot tell):

- the template gives each message `#. source-sha: <8 hex>`, a hash of its source text;
- `update` stamps every translation that is current (translated, not fuzzy, msgid equal to
  the source) with a translator comment `# translated-from: <that hash>`;
- when a source changes, `update` puts the new msgid in, keeps the old translation as a
  suggestion, marks it fuzzy and keeps the old source as `#| msgid` (babel's previous_id);
- `check` extracts the sources afresh (it never trusts an old template) and reports a
  translation as stale if its msgid is not the current source (update not run yet), if it
  is fuzzy with a previous source, or if its stamp names another source. So one changed
  question fails `check` in every language, naming the question, with or without `update`.
"""

from __future__ import annotations

import functools
import gettext
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import PoFileError, normalize, read_po, unescape, write_po

from .engine.check import PLACEHOLDER_WIDTH
from .engine.languages import SUPPORTED
from .engine.segments import Measure, measure, non_gsm_chars
from .i18n import (
    CALENDAR_DIR,
    SOURCE_LANGUAGE,
    CalendarMissing,
    CalendarNames,
    CatalogLocalizer,
    borrows_calendar,
    calendar_names,
    catalog_paths,
    compile_po,
)
from .i18n_extract import PLACEHOLDER_RE, SHA_TAG, SourceText, placeholders, template, version

STAMP_TAG = "translated-from:"
TEMPLATE_NAME = "messages.pot"


# ---- reading and writing ------------------------------------------------------------------


def read_catalog(path: Path, language: str | None = None) -> Catalog:
    """Parse a `.po`/`.pot`; PoFileError if it is malformed.

    babel reads `#| msgid` lines (the previous source of a fuzzy entry) as plain translator
    comments; they are turned back into `previous_id` here.
    """
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=language, abort_invalid=True)
    for message in catalog:
        previous = [c for c in message.user_comments if c.startswith("|")]
        if previous:
            message.user_comments = [c for c in message.user_comments if not c.startswith("|")]
            message.previous_id = _previous(previous)
    return catalog


def _previous(lines: Sequence[str]) -> list[str]:
    """`["| msgid \"a\"", "| \"b\""]` -> `["ab"]` (plus the plural, if any)."""
    parts: dict[str, str] = {}
    key = ""
    for raw in lines:
        line = raw[1:].strip()
        for keyword in ("msgid_plural", "msgid", "msgctxt"):
            if line.startswith(keyword + " "):
                key, line = keyword, line[len(keyword):].strip()
                break
        if key and line.startswith('"'):
            parts[key] = parts.get(key, "") + unescape(line)
    return [parts[k] for k in ("msgid", "msgid_plural") if k in parts]


def render(catalog: Catalog) -> bytes:
    """The catalog as `.po` text: one line per msgid/msgstr, so diffs read per message."""
    out = io.BytesIO()
    write_po(out, catalog, width=0, sort_output=False, ignore_obsolete=False,
             include_previous=False)
    text = out.getvalue().decode("utf-8")
    previous = {m.context: m.previous_id for m in catalog
                if m.id and m.context and m.previous_id and m.fuzzy}
    if not previous:
        return text.encode("utf-8")
    # babel wraps `#| msgid` as prose at 76 columns, cutting through the quoted string (and
    # cannot read it back): write those lines here instead, just before the msgctxt.
    lines: list[str] = []
    for line in text.split("\n"):
        if line.startswith("msgctxt "):
            ids = previous.get(unescape(line[len("msgctxt "):]), [])
            for keyword, value in zip(("msgid", "msgid_plural"), ids, strict=False):
                lines.append(f"#| {keyword} " + normalize(value, prefix="#| ", width=0))
        lines.append(line)
    return "\n".join(lines).encode("utf-8")


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def write_template(sources: Sequence[SourceText], path: Path) -> bool:
    """Write the `.pot`; keep the file (and its creation date) if no message changed."""
    created = None
    if path.exists():
        try:
            parsed = read_catalog(path).creation_date
        except PoFileError:
            parsed = None
        created = parsed if isinstance(parsed, datetime) else None
    if created is not None:
        data = render(template(sources, created))
        if path.read_bytes() == data:
            return False
    return _write_if_changed(path, render(template(sources)))


def translated(string: object) -> bool:
    if isinstance(string, (tuple, list)):
        return bool(string) and all(translated(s) for s in string)
    return isinstance(string, str) and bool(string.strip())


def stamp(message: Message) -> str | None:
    for comment in message.user_comments:
        if comment.startswith(STAMP_TAG):
            return comment[len(STAMP_TAG):].strip() or None
    return None


def _with_stamp(comments: Iterable[str], sha: str | None) -> list[str]:
    kept = [c for c in comments if not c.startswith(STAMP_TAG)]
    return kept + [f"{STAMP_TAG} {sha}"] if sha else kept


def source_sha_of(message: Message) -> str | None:
    for comment in message.auto_comments:
        if comment.startswith(SHA_TAG):
            return comment[len(SHA_TAG):].strip()
    return None


# ---- update -------------------------------------------------------------------------------


@dataclass
class UpdateResult:
    language: str
    path: Path
    created: bool = False
    written: bool = False
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # source changed: now fuzzy
    obsolete: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.added)} new", f"{len(self.changed)} changed at the source",
                 f"{len(self.obsolete)} no longer used"]
        state = "created" if self.created else "updated" if self.written else "unchanged"
        return f"{self.path}: {state} ({', '.join(parts)})"


def _new_catalog(language: str) -> Catalog:
    name = Locale.parse(language).english_name or language
    return Catalog(
        locale=language, project="trialbot", version=version(),
        msgid_bugs_address="study-team@example.org", fuzzy=False, charset="utf-8",
        revision_date=datetime.now(UTC),
        last_translator="Study team <study-team@example.org>",
        language_team=f"{name} <study-team@example.org>",
        header_comment=_SOURCE_HEADER if language == SOURCE_LANGUAGE else
        f"# {name} ({language}) translations of the study flows and the bot's own messages.\n"
        "# Kept in step with translations/messages.pot by `bot translations update`; see "
        "docs/translators.md.")


_SOURCE_HEADER = (
    "# The source language: every msgstr is a copy of its msgid, made by `bot translations\n"
    "# update`. Do not edit: English wording is changed in the flow files.")


def merge(catalog: Catalog, sources: Sequence[SourceText], language: str,
          result: UpdateResult) -> Catalog:
    """Bring `catalog` in line with `sources`, matching messages by msgctxt (in place)."""
    is_source = language == SOURCE_LANGUAGE
    current = {m.context: m for m in catalog if m.id and m.context}
    retired = {m.context: key for key, m in catalog.obsolete.items() if m.context}
    for m in list(current.values()):
        catalog.delete(m.id, m.context)
    for src in sources:
        old = current.pop(src.context, None)
        if old is None and src.context in retired:  # a text that comes back
            old = catalog.obsolete.pop(retired.pop(src.context))
        flags = set(old.flags) if old is not None else set()
        flags -= {"python-format", "python-brace-format"}  # recomputed from the new msgid
        comments = list(old.user_comments) if old is not None else []
        previous: list[str] = []
        string: str | tuple[str, ...] | list[str] | None = ""
        if old is None:
            result.added.append(src.context)
        if is_source:  # the source language's catalog mirrors the source exactly
            string, flags = src.msgid, flags - {"fuzzy"}
            comments = _with_stamp(comments, src.sha)
        elif old is not None:
            string = old.string
            if old.id != src.msgid and translated(string):
                # Keep the old translation as a suggestion; it must be reviewed.
                result.changed.append(src.context)
                flags.add("fuzzy")
                was_fuzzy = "fuzzy" in old.flags and old.previous_id
                previous = list(old.previous_id) if was_fuzzy else [str(old.id)]
            elif old.id != src.msgid:
                string = ""
            elif "fuzzy" in flags:
                previous = list(old.previous_id)
            elif translated(string):
                comments = _with_stamp(comments, src.sha)  # confirmed: record its source
        catalog[src.msgid] = Message(
            src.msgid, string, locations=[(src.path, src.line)], flags=flags,
            auto_comments=src.comments, user_comments=comments, previous_id=previous,
            context=src.context)
    for old in current.values():
        result.obsolete.append(str(old.context))
        catalog.obsolete[_key(old)] = old
    return catalog


def _key(message: Message) -> str | tuple[str, str]:
    """The key babel files a message under (its first msgid, with the context)."""
    first = message.id[0] if isinstance(message.id, (tuple, list)) else message.id
    return (str(first), message.context) if message.context else str(first)


def update_catalog(directory: Path, language: str, sources: Sequence[SourceText], *,
                   create: bool = False) -> UpdateResult:
    """Merge the sources into one language's catalog; create it only if `create`."""
    po, _ = catalog_paths(language, directory)
    result = UpdateResult(language, po)
    if po.exists():
        catalog = read_catalog(po, language)
    elif create:
        catalog = _new_catalog(language)
        result.created = True
    else:
        raise FileNotFoundError(po)
    merge(catalog, sources, language, result)
    result.written = _write_if_changed(po, render(catalog))
    return result


# ---- compile ------------------------------------------------------------------------------


def compile_catalog(directory: Path, language: str) -> Path:
    po, mo = catalog_paths(language, directory)
    mo.write_bytes(compile_po(po.read_bytes(), language))
    return mo


# ---- check --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, where to fix it, in which language, about which message."""

    path: str
    line: int
    language: str
    kind: str
    msgid: str = ""
    context: str = ""
    detail: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        about = f": {self.context} \"{_short(self.msgid)}\"" if self.msgid else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{where}: {self.language}: {self.kind}{about}{detail}"


def _short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@functools.lru_cache(maxsize=64)
def _long_dates(language: str, calendar: CalendarNames | None,
                has_time: bool) -> tuple[str, ...]:
    """The dates that take the most room in this language: the longest of the year, and the
    longest that needs UCS-2 (in Spanish "sábado" costs more than "miércoles" can)."""
    loc = CatalogLocalizer(language, gettext.NullTranslations(), "check", calendar)
    start = datetime(2027, 1, 1, 15, 45)
    texts = [loc.format_when(start + timedelta(days=i), has_time) for i in range(365)]
    unicode = [t for t in texts if non_gsm_chars(t)]
    longest = max(texts, key=len)
    return (longest, max(unicode, key=len)) if unicode else (longest,)


def _samples(text: str, src: SourceText, language: str, calendar: CalendarNames | None,
             yes_no: Sequence[str]) -> list[str]:
    """`text` with its placeholders replaced by realistic values, one per date candidate."""
    kinds = dict(src.kinds)
    variants = len(_long_dates(language, calendar, True))

    def fill(index: int) -> str:
        def value(m: re.Match[str]) -> str:
            kind = kinds.get(m.group(1), "text")
            if kind in ("date", "datetime"):
                dates = _long_dates(language, calendar, kind == "datetime")
                return dates[min(index, len(dates) - 1)]
            if kind == "number":
                return "100"
            if kind == "word":
                return max(yes_no, key=len)
            return "x" * PLACEHOLDER_WIDTH

        return PLACEHOLDER_RE.sub(value, text)

    return [fill(i) for i in range(variants)]


def _too_long(m: Measure, body: str, budget: int) -> str:
    unit = "characters" if m.encoding == "GSM-7" else "UTF-16 units"
    detail = (f"{m.segments} SMS segments ({m.encoding}, {m.units} {unit}); "
              f"the budget is {budget}")
    odd = non_gsm_chars(body)
    if odd and len(odd) <= 5:
        plain = measure("".join(c for c in body if c not in odd)).segments
        if plain <= budget:
            shown = " ".join(f"`{c}`" for c in odd)
            detail += f"; UCS-2 because of {shown}: without them it would be {plain}"
    return detail


@dataclass
class _Lang:
    entries: dict[str, Message]  # by msgctxt

    def string(self, context: str, source: str) -> str:
        m = self.entries.get(context)
        if m is None or not translated(m.string) or "fuzzy" in m.flags or m.id != source:
            return source  # what the participant would get
        return str(m.string)


def check_language(directory: Path, language: str, sources: Sequence[SourceText],
                   rel: Path | None = None) -> list[Finding]:
    po, _ = catalog_paths(language, directory)
    shown = str(po.relative_to(rel)) if rel and po.is_relative_to(rel) else str(po)
    out: list[Finding] = []
    calendar = None
    if borrows_calendar(language):
        try:
            calendar = calendar_names(language, directory)
        except CalendarMissing as exc:
            cal = directory / CALENDAR_DIR / f"{language}.yaml"
            out.append(Finding(str(cal.relative_to(rel)) if rel and cal.is_relative_to(rel)
                               else str(cal), 0, language, "day and month names missing",
                               detail=f"babel would write dates in another language; {exc}"))
    if not po.exists():
        hint = (f"participants would silently get the source text; create it with "
                f"`bot translations update --lang {language}`")
        return [*out, Finding(shown, 0, language, "catalog missing", detail=hint)]
    try:
        catalog = read_catalog(po, language)
    except (PoFileError, ValueError, OSError) as exc:
        return [*out, Finding(shown, 0, language, "unreadable", detail=str(exc))]
    lang = _Lang({m.context: m for m in catalog if m.id and m.context})
    yes_no = [lang.string(f"system:word.{w}", w) for w in ("yes", "no")]
    by_context = {s.context: s for s in sources}
    for src in sources:
        m = lang.entries.get(src.context)
        line = (m.lineno or 0) if m is not None else 0

        def found(kind: str, detail: str = "", src: SourceText = src, line: int = line) -> None:
            where, at = (shown, line) if line else (src.path, src.line)
            extra = f" (source {src.location})" if line else ""
            out.append(Finding(where, at, language, kind, src.msgid, src.context,
                               detail + extra if detail else extra.strip(" ()")))

        if m is None or not translated(m.string):
            found("missing", "the English catalog is made by `bot translations update`"
                  if language == SOURCE_LANGUAGE else "")
            continue
        if m.id != src.msgid:
            found("stale", f"translated from an older source \"{_short(str(m.id))}\"; "
                           "run `bot translations update`, then review it")
            continue
        sha = stamp(m)
        if "fuzzy" in m.flags:
            if m.previous_id or (sha and sha != src.sha):
                before = f" from \"{_short(m.previous_id[0])}\"" if m.previous_id else ""
                found("stale", f"the source changed{before}; review the translation, "
                               "then remove the fuzzy mark")
            else:
                found("fuzzy", "review the translation, then remove the fuzzy mark")
            continue
        if sha and sha != src.sha:
            found("stale", f"confirmed for source {sha}, the source is now {src.sha}; "
                           "review it, then run `bot translations update` to record it")
            continue
        string = str(m.string)
        if language == SOURCE_LANGUAGE:
            if string != src.msgid:
                found("differs from the source", "English wording is changed in the flow "
                      "file; run `bot translations update`")
            continue
        want, have = placeholders(src.msgid), placeholders(string)
        if want != have:
            parts = []
            if want - have:
                parts.append("missing " + ", ".join(sorted(want - have)))
            if have - want:
                parts.append("unknown " + ", ".join(sorted(have - want)))
            found("placeholders differ", "; ".join(parts) + " (copy them from the source "
                  "exactly; the bot fills them in)")
            continue
        body = string
        if src.choices:
            labels = [lang.string(c, by_context[c].msgid) for c in src.choices
                      if c in by_context]
            body += "\n" + "\n".join(f"{i}. {label}" for i, label in enumerate(labels, 1))
        size, sample = max(((measure(t), t) for t in _samples(body, src, language, calendar,
                                                              yes_no)),
                           key=lambda pair: pair[0].segments)
        if size.segments > src.budget:
            what = "with its numbered choices, " if src.choices else ""
            found("too long", what + _too_long(size, sample, src.budget))
    return out


def check_template(path: Path, sources: Sequence[SourceText], shown: str) -> list[Finding]:
    if not path.exists():
        return [Finding(shown, 0, "template", "missing",
                        detail="run `bot translations extract`")]
    try:
        pot = read_catalog(path)
    except (PoFileError, ValueError) as exc:
        return [Finding(shown, 0, "template", "unreadable", detail=str(exc))]
    have = {(m.context, m.id, source_sha_of(m)) for m in pot if m.id}
    want = {(s.context, s.msgid, s.sha) for s in sources}
    if have == want:
        return []
    return [Finding(shown, 0, "template", "out of date",
                    detail=f"{len(want - have)} new or changed, {len(have - want)} gone; "
                           "run `bot translations extract`")]


def check(directory: Path, sources: Sequence[SourceText],
          languages: Sequence[str] = SUPPORTED, rel: Path | None = None) -> list[Finding]:
    """Every problem with the template and the catalogs of `languages`."""
    pot = directory / TEMPLATE_NAME
    shown = str(pot.relative_to(rel)) if rel and pot.is_relative_to(rel) else str(pot)
    out = check_template(pot, sources, shown)
    for language in languages:
        out.extend(check_language(directory, language, sources, rel))
    return out
