"""`bot flows test`: play the golden transcripts against the flows and report mismatches."""

from __future__ import annotations

from pathlib import Path

import click

from .db import FLOWS_DEFAULT_HELP, default_flows_dir
from .groups import flows

DEFAULT_TRANSCRIPTS = Path("tests/transcripts")


def transcript_files(paths: list[Path]) -> list[Path]:
    """Transcript files under the given files or folders (recursively), sorted."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted([*p.rglob("*.yaml"), *p.rglob("*.yml")]))
        else:
            found.append(p)
    return found


@flows.command("test")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--flows-dir", "flows_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help=f"Folder of flow files [default: {FLOWS_DEFAULT_HELP}].")
@click.option("-q", "--quiet", is_flag=True, help="Only print failures and the summary.")
def test(paths: tuple[Path, ...], flows_dir: Path | None, quiet: bool) -> None:
    """Run golden transcripts (default: tests/transcripts) and print pass/fail for each.

    A failure names the transcript's file and line for every mismatch. Exits 1 if any
    transcript fails.
    """
    from ..engine.problems import FlowError
    from ..engine.transcript import TranscriptError, parse_transcript, run_transcript
    from ..i18n import catalogs
    from ..simulator import load_flows

    try:
        flow_set = load_flows(flows_dir or default_flows_dir())
    except FlowError as exc:
        raise click.ClickException(f"the flows have problems:\n{exc}") from None
    files = transcript_files(list(paths) or [DEFAULT_TRANSCRIPTS])
    if not files:
        raise click.ClickException("no transcripts found")
    failed = 0
    for path in files:
        try:
            data = parse_transcript(path.read_text(encoding="utf-8"), str(path))
            problems = [str(m) for m in run_transcript(data, str(path), flow_set, catalogs)]
        except TranscriptError as exc:
            problems = [f"{path}:{exc.line}: {exc}"]
        except (OSError, UnicodeDecodeError) as exc:
            problems = [f"{path}:1: cannot read the file: {exc}"]
        if problems:
            failed += 1
            click.echo(click.style("FAIL", fg="red", bold=True) + f" {path}")
            for problem in problems:
                click.echo("  " + problem.replace("\n", "\n  "))
        elif not quiet:
            click.echo(click.style("pass", fg="green") + f" {path}")
    passed = len(files) - failed
    click.echo(f"{passed} passed, {failed} failed")
    if failed:
        raise SystemExit(1)
