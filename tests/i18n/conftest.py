"""A private copy of the flows and catalogs per test, so tests can break them freely.

`project` is a folder holding `flows/` and `translations/` copied from the repository and
then completed: every catalog is brought up to date with `update` and any gap is filled with
the source text, so `check` passes on it and a test sees exactly the problems it makes.
`TRANSLATIONS_DIR` points at the copy, so `bot.i18n` loads its catalogs from there.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot import i18n
from bot.cli import main
from bot.engine.languages import SUPPORTED
from bot.i18n_catalogs import read_catalog, render, translated, update_catalog, write_template
from bot.i18n_extract import SourceText, collect

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Project:
    root: Path

    @property
    def flows(self) -> Path:
        return self.root / "flows"

    @property
    def translations(self) -> Path:
        return self.root / "translations"

    def po(self, lang: str) -> Path:
        return self.translations / lang / "LC_MESSAGES" / "messages.po"

    def sources(self) -> list[SourceText]:
        return collect(self.flows)

    def bot(self, *args: str) -> Result:
        """Run `bot translations <args>` on this copy."""
        command, *rest = args
        return CliRunner().invoke(main, ["translations", command, "--dir", str(self.translations),
                                         *(["--flows", str(self.flows)]
                                           if command != "compile" else []), *rest])

    def set_string(self, lang: str, context: str, text: str) -> None:
        """Write a translation into the copy's catalog, as a translator would."""
        path = self.po(lang)
        catalog = read_catalog(path, lang)
        (message,) = [m for m in catalog if m.context == context]
        message.string = text
        path.write_bytes(render(catalog))

    def edit_flow(self, name: str, old: str, new: str) -> None:
        path = self.flows / name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _complete(directory: Path, sources: list[SourceText]) -> None:
    by_context = {s.context: s for s in sources}
    for lang in SUPPORTED:
        update_catalog(directory, lang, sources, create=True)
        path = directory / lang / "LC_MESSAGES" / "messages.po"
        catalog = read_catalog(path, lang)
        for message in catalog:
            if message.id and (not translated(message.string) or message.fuzzy):
                message.string = by_context[str(message.context)].msgid
                message.flags.discard("fuzzy")
                message.previous_id = []
        path.write_bytes(render(catalog))
        update_catalog(directory, lang, sources)  # stamps what is now current
    write_template(sources, directory / "messages.pot")


@pytest.fixture(scope="session")
def _baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("i18n-baseline")
    shutil.copytree(ROOT / "flows", base / "flows")
    shutil.copytree(ROOT / "translations", base / "translations",
                    ignore=shutil.ignore_patterns("*.mo"))
    _complete(base / "translations", collect(base / "flows"))
    return base


@pytest.fixture
def project(_baseline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    shutil.copytree(_baseline, tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv("TRANSLATIONS_DIR", str(tmp_path / "translations"))
    i18n.clear_cache()
    yield Project(tmp_path)
    i18n.clear_cache()
