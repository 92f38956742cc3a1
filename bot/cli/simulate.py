"""`bot simulate`: play a flow in the terminal (or from a script) as a participant would."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from pathlib import Path

import click

from .db import FLOWS_DEFAULT_HELP, default_flows_dir
from .groups import main


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"`{pair}` must look like KEY=VALUE", param_hint="--param")
        out[key.strip()] = value.strip()
    return out


@main.command("simulate")
@click.option("--flow", "flow", required=True, help="Flow id, e.g. daily_checkin.")
@click.option("--lang", "lang", default="en", show_default=True,
              help="Participant language (en, es, fr, pt, sw, ar, zh, vi, ht).")
@click.option("--tz", "tz", default="UTC", show_default=True,
              help="Participant time zone, e.g. America/New_York.")
@click.option("--script", "script", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Read replies and /commands from this file; no terminal.")
@click.option("--flows-dir", "flows_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help=f"Folder of flow files [default: {FLOWS_DEFAULT_HELP}].")
@click.option("--param", "param", multiple=True, metavar="KEY=VALUE",
              help="Flow parameter, e.g. visit_at=2026-03-10T09:30. Repeatable.")
@click.option("--now", "now", default=None, metavar="ISO",
              help="Start the simulated clock here (local to --tz) instead of now.")
@click.option("--field", "field", multiple=True, metavar="KEY=VALUE",
              help="Participant field, e.g. checkin_time=08:30. Repeatable.")
def simulate(flow: str, lang: str, tz: str, script: Path | None, flows_dir: Path | None = None,
             param: tuple[str, ...] = (), now: str | None = None,
             field: tuple[str, ...] = ()) -> None:
    """Talk to a flow as a participant, with a simulated clock.

    Lines you type are the participant's replies; /wait, /day, /now, /state, /events,
    /restart and /quit control the simulation (/help lists them).
    """
    from ..engine.problems import FlowError
    from ..engine.session import Participant
    from ..engine.transcript import localize, zone
    from ..i18n import CatalogMissing, catalogs, negotiate
    from ..simulator import Simulator, load_flows

    try:
        tzinfo = zone(tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tz") from None
    language = negotiate(lang, default="")
    if not language:
        raise click.BadParameter(f"`{lang}` is not a supported language", param_hint="--lang")
    try:
        catalogs(language)
    except CatalogMissing as exc:
        raise click.ClickException(str(exc)) from None
    try:
        flows = load_flows(flows_dir or default_flows_dir())
    except FlowError as exc:
        raise click.ClickException(f"the flows have problems:\n{exc}") from None
    if flow not in flows:
        raise click.BadParameter(f"no flow `{flow}`; have: {', '.join(sorted(flows))}",
                                 param_hint="--flow")
    params = _params(param)
    missing = [p for p in flows[flow].params if p not in params]
    if missing:
        raise click.UsageError(f"flow `{flow}` needs " + " ".join(
            f"--param {p}=..." for p in missing))
    if now is None:
        start = datetime.now(tzinfo)
    else:
        try:
            parsed = datetime.fromisoformat(now)
        except ValueError:
            raise click.BadParameter(f"`{now}` is not like 2026-03-02T08:30",
                                     param_hint="--now") from None
        start = localize(parsed, tzinfo) if parsed.tzinfo is None else parsed
    participant = Participant(id="simulated", language=language, timezone=tz,
                              fields=_params(field))
    interactive = script is None and sys.stdin.isatty()
    sim = Simulator(flows, flow, participant, start, catalogs, params, out=click.echo,
                    dim=lambda s: click.style(s, dim=True), echo_input=not interactive)
    sim.begin()
    if script is not None:
        with script.open(encoding="utf-8") as fh:
            sim.run(fh)
        return
    if not interactive:
        sim.run(sys.stdin)
        return
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            click.echo()
            return
        if not sim.handle(line):
            return
