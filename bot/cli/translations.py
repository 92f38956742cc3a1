"""`bot translations extract | update | compile | check`: the catalogs' life cycle.

The work is done in `bot.i18n_extract` (what is translatable) and `bot.i18n_catalogs`
(merging, compiling, checking); this module only reads options and prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from ..engine.languages import SUPPORTED
from ..engine.understand.words import configured_translations_dir
from ..i18n import catalog_paths, clear_cache, translations_dir
from ..i18n_catalogs import (
    TEMPLATE_NAME,
    compile_catalog,
    update_catalog,
    write_template,
)
from ..i18n_catalogs import check as check_catalogs
from ..i18n_extract import ExtractError, SourceText, collect
from .db import FLOWS_DEFAULT_HELP, default_flows_dir
from .groups import translations

_LANGUAGE = click.Choice(SUPPORTED)


def _translations(directory: Path | None) -> Path:
    """--dir, else $TRANSLATIONS_DIR, else translations/ here, else the shipped one.

    Found the same way as the flows, so that a copy of the project is never checked or
    updated against the original's catalogs.
    """
    if directory is not None:
        return directory
    configured = configured_translations_dir()
    if configured is not None:
        return configured
    here = Path("translations")
    return here if here.is_dir() else translations_dir()


def _common(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("--flows", "flows_dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help=f"Flow folder (default: {FLOWS_DEFAULT_HELP}).")(f)
    return click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                        default=None, help="Translations folder (default: translations/, "
                        "or $TRANSLATIONS_DIR).")(f)


def _sources(flows_dir: Path | None) -> list[SourceText]:
    try:
        return collect(flows_dir or default_flows_dir())
    except ExtractError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.ClickException("fix the flows first (`bot flows check`)") from None


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@translations.command("extract")
@_common
def extract(flows_dir: Path | None, directory: Path | None) -> None:
    """Write translations/messages.pot from the flows and the bot's own messages."""
    base = _translations(directory)
    sources = _sources(flows_dir)
    pot = base / TEMPLATE_NAME
    written = write_template(sources, pot)
    click.echo(f"{_shown(pot)}: {len(sources)} messages ({'written' if written else 'unchanged'})")


@translations.command("update")
@_common
@click.option("--lang", "languages", multiple=True, type=_LANGUAGE,
              help="Only these languages (repeatable); a missing catalog is created.")
def update(flows_dir: Path | None, directory: Path | None, languages: Sequence[str]) -> None:
    """Extract, then merge the template into each catalog.

    New texts are added empty; a text whose source changed keeps its old translation marked
    fuzzy, with the old source beside it (#| msgid) for review; translations that are
    current are stamped with the source they translate (# translated-from). Without
    --lang, every existing catalog is updated.
    """
    base = _translations(directory)
    sources = _sources(flows_dir)
    write_template(sources, base / TEMPLATE_NAME)
    chosen = list(languages) or [lang for lang in SUPPORTED
                                 if catalog_paths(lang, base)[0].exists()]
    for lang in chosen:
        result = update_catalog(base, lang, sources, create=bool(languages))
        click.echo(result.summary().replace(str(result.path), _shown(result.path), 1))
        for context in result.changed:
            click.echo(f"  review (source changed): {context}")
    clear_cache()


@translations.command("compile")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Translations folder (default: translations/).")
@click.option("--lang", "languages", multiple=True, type=_LANGUAGE,
              help="Only these languages (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing unless something fails.")
def compile_(directory: Path | None, languages: Sequence[str], quiet: bool) -> None:
    """Compile each .po catalog to the .mo the bot loads (fuzzy entries are left out)."""
    base = _translations(directory)
    failed = False
    for lang in languages or SUPPORTED:
        po, _ = catalog_paths(lang, base)
        if not po.exists():
            if languages:
                click.echo(f"{_shown(po)}: no such catalog", err=True)
                failed = True
            continue
        try:
            mo = compile_catalog(base, lang)
        except (ValueError, OSError) as exc:
            click.echo(f"{_shown(po)}: {exc}", err=True)
            failed = True
            continue
        if not quiet:
            click.echo(f"{_shown(mo)}: compiled")
    clear_cache()
    if failed:
        raise SystemExit(1)


@translations.command("check")
@_common
@click.option("--lang", "languages", multiple=True, type=_LANGUAGE,
              help="Only these languages (repeatable; default: all supported).")
def check(flows_dir: Path | None, directory: Path | None, languages: Sequence[str]) -> None:
    """Fail on anything a participant would see wrongly translated.

    Reports, with file:line, language and text: a missing catalog; a missing or fuzzy
    translation; a stale one (its source changed since it was translated); placeholders
    that differ from the source; a translation over the study's SMS segment budget; an
    out-of-date template; missing day and month names. Exits with status 1 if any.
    """
    base = _translations(directory)
    sources = _sources(flows_dir)
    chosen = list(languages) or list(SUPPORTED)
    findings = check_catalogs(base, sources, chosen, rel=Path.cwd())
    for finding in findings:
        click.echo(str(finding))
    checked = f"{len(chosen)} catalog{'s' if len(chosen) != 1 else ''}, {len(sources)} messages"
    if findings:
        click.echo(f"{checked}: {len(findings)} problem{'s' if len(findings) != 1 else ''}")
        raise SystemExit(1)
    click.echo(f"{checked}: no problems")
