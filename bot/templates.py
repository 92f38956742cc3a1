"""Approved WhatsApp templates, for messages outside the 24 hour customer-care window.

WhatsApp delivers free-form text only within 24 h of the participant's last message; after
that only a template Meta approved goes through, sent as `content_sid` (one HX sid per
language) plus JSON `content_variables`. The study keeps the list in a file named by
`WHATSAPP_TEMPLATES` (JSON or YAML):

    checkin:                       # purpose (Message.purpose; "default" when none is set)
      en: {content_sid: HX0123..., variables: {"1": "{study_name}"}}
      es: {content_sid: HX4567..., variables: {"1": "{study_name}"}}
    default:
      en: {content_sid: HX89ab...}

Variable values are format strings over a few safe fields (`study_name`, `study_contact`,
and `body`, the text the bot meant to send); nothing else about the participant is offered,
so no health data lands in a template by accident. A purpose with no template in the
participant's language has none: the message falls back to SMS or is undeliverable.

A template whose variables do not use `{body}` does not show the text: the send job marks
the row withheld, and the webhook delivers the text when the participant next writes
(bot/outbox.release_withheld).
"""

from __future__ import annotations

import json
import os
import re
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .engine.languages import primary

CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
DEFAULT_PURPOSE = "default"
#: The names a template variable may use.
FIELDS = ("study_name", "study_contact", "body")
_MAX_FILE_BYTES = 1024 * 1024


class TemplateError(ValueError):
    """The templates file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Template:
    purpose: str
    language: str
    content_sid: str
    variables: Mapping[str, str] = field(default_factory=dict)

    def render_variables(self, values: Mapping[str, str]) -> str:
        """`content_variables` as Twilio wants it: a JSON object of strings."""
        out = {key: text.format_map(_Only(values)) for key, text in self.variables.items()}
        return json.dumps(out, ensure_ascii=False, sort_keys=True)

    @property
    def carries_body(self) -> bool:
        """Does the participant see the text itself (`{body}` in a variable)? A generic
        template ("you have a new message") withholds it until they write back."""
        return any("body" in _names(text) for text in self.variables.values())


def _names(text: str) -> set[str]:
    """The fields a variable's format string uses."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


class _Only(dict[str, str]):
    """format_map source that refuses names outside FIELDS (checked at load, so rare)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__({k: values.get(k, "") for k in FIELDS})

    def __missing__(self, key: str) -> str:
        raise KeyError(key)


class TemplateRegistry:
    """purpose → language → Template."""

    def __init__(self, templates: Mapping[str, Mapping[str, Template]] | None = None) -> None:
        self._by_purpose = {p: dict(langs) for p, langs in (templates or {}).items()}

    def __len__(self) -> int:
        return sum(len(langs) for langs in self._by_purpose.values())

    def lookup(self, purpose: str | None, language: str | None) -> Template | None:
        """The template for `purpose` (or the default one) in the participant's language."""
        if not language:
            return None
        for name in dict.fromkeys((purpose or DEFAULT_PURPOSE, DEFAULT_PURPOSE)):
            langs = self._by_purpose.get(name)
            if not langs:
                continue
            found = langs.get(language) or langs.get(primary(language))
            if found is not None:
                return found
        return None

    @classmethod
    def parse(cls, data: Any, source: str = "templates") -> TemplateRegistry:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise TemplateError(f"{source}: expected purposes at the top level, each with "
                                "languages, e.g. `checkin: {en: {content_sid: HX...}}`")
        out: dict[str, dict[str, Template]] = {}
        for purpose, langs in data.items():
            where = f"{source}: `{purpose}`"
            if not isinstance(purpose, str) or not purpose or len(purpose) > 32:
                raise TemplateError(f"{where}: a purpose is a name of at most 32 characters")
            if not isinstance(langs, Mapping):
                raise TemplateError(
                    f"{where}: expected languages, e.g. `en: {{content_sid: HX...}}`")
            out[purpose] = {}
            for language, entry in langs.items():
                out[purpose][str(language)] = _template(purpose, str(language), entry,
                                                        f"{where}.{language}")
        return cls(out)


def _template(purpose: str, language: str, entry: Any, where: str) -> Template:
    if not isinstance(entry, Mapping):
        raise TemplateError(f"{where}: expected `content_sid` (and optional `variables`)")
    unknown = set(entry) - {"content_sid", "variables"}
    if unknown:
        raise TemplateError(f"{where}: unknown keys {sorted(map(str, unknown))}")
    sid = entry.get("content_sid")
    if not isinstance(sid, str) or not CONTENT_SID.match(sid):
        raise TemplateError(f"{where}: content_sid must be HX followed by 32 hex digits")
    variables = entry.get("variables") or {}
    if not isinstance(variables, Mapping):
        raise TemplateError(f"{where}: variables must map placeholders to text, e.g. "
                            '`{"1": "{study_name}"}`')
    checked: dict[str, str] = {}
    for key, text in variables.items():
        if not isinstance(text, str):
            raise TemplateError(f"{where}: variable {key} must be text")
        bad = sorted(_names(text) - set(FIELDS))
        if bad:
            raise TemplateError(f"{where}: variable {key} uses {bad}; only "
                                f"{', '.join(FIELDS)} may be used")
        checked[str(key)] = text
    return Template(purpose, language, sid, checked)


def load(path: str | os.PathLike[str]) -> TemplateRegistry:
    """Read a templates file (YAML or JSON; JSON is YAML too)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise TemplateError(f"{p}: larger than {_MAX_FILE_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{p}: cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise TemplateError(f"{p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: "
                            f"{exc}") from None
    return TemplateRegistry.parse(data, str(p))


_cache: dict[str, tuple[float, TemplateRegistry]] = {}
_cache_lock = threading.Lock()


def registry_for(path: str | None) -> TemplateRegistry:
    """The registry from `path`, re-read when the file changes; empty when no file is set."""
    if not path:
        return TemplateRegistry()
    mtime = Path(path).stat().st_mtime if Path(path).exists() else -1.0
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
    registry = load(path)
    with _cache_lock:
        _cache[path] = (mtime, registry)
    return registry
