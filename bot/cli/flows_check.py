"""`bot flows check`: load and check flow files, print every problem with file and line."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..engine.check import STUDY_FILE, check_paths
from ..engine.loader import flow_files
from ..engine.problems import Problem
from .db import default_flows_dir
from .groups import flows


def _summary(problems: list[Problem], files: int) -> str:
    errors = sum(1 for p in problems if p.level == "error")
    warnings = len(problems) - errors
    checked = f"{files} flow file{'s' if files != 1 else ''} checked"
    if not problems:
        return f"{checked}: no problems"
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"{checked}: {', '.join(parts)}"


@flows.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too, not only on errors.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output for people (text) or for tools (json).")
def check(paths: tuple[Path, ...], strict: bool, fmt: str) -> None:
    """Check flow files for mistakes before they reach a participant.

    PATHS are flow files or folders (default: FLOWS_DIR, else flows/ here). Exits with
    status 1 when there is an error (or, with --strict, a warning).
    """
    targets: list[str | Path] = list(paths) or [default_flows_dir()]
    problems = check_paths(targets)
    files = sum(1 for f in flow_files([t for t in targets if Path(t).exists()])
                if f.name != STUDY_FILE)
    failed = any(p.level == "error" or strict for p in problems)
    if fmt == "json":
        click.echo(json.dumps({
            "files": files,
            "errors": sum(1 for p in problems if p.level == "error"),
            "warnings": sum(1 for p in problems if p.level == "warning"),
            "ok": not failed,
            "problems": [
                {"path": p.path, "line": p.line, "step": p.step, "level": p.level,
                 "code": p.code, "message": p.message, "suggestion": p.suggestion}
                for p in problems
            ],
        }, indent=2, ensure_ascii=False))
    else:
        for problem in problems:
            click.echo(str(problem))
        click.echo(_summary(problems, files), err=bool(problems))
    if failed:
        raise SystemExit(1)
