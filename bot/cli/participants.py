"""`bot participants`: enrol, start flows, list, export and erase. Every change is audited as
`staff:<you>`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from .. import participants_io as pio
from ..participants import mask_phone
from ..store.db import session_scope
from ..store.models import Participant
from .db import open_database
from .groups import main

if TYPE_CHECKING:
    from ..config import Settings
    from ..engine.flow import Flow
    from ..flow_registry import FlowRegistry
    from ..flow_start import Refused, Report

actor_option = click.option("--actor", metavar="NAME",
                            help="Your name for the audit trail (default: your OS user).")
region_option = click.option("--region", metavar="CC",
                             help="Country of numbers typed without +country code, e.g. US.")
start_option = click.option(
    "--start", "start_flow", metavar="FLOW",
    help="Then start this flow for them (e.g. onboarding): its first messages go out at once.")


def _region(value: str | None) -> str | None:
    if value is None:
        return None
    region = value.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise click.BadParameter(f'"{value}" is not a two-letter country code',
                                 param_hint="--region")
    return region


def _fail(problems: list[str], summary: str | None = None) -> NoReturn:
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if summary:
        click.echo(summary, err=True)
    raise SystemExit(1)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _flow_to_start(settings: Settings, flow_id: str,
                   summary: str | None = None) -> tuple[FlowRegistry, Flow]:
    """The flow `--start` or `start` names, checked before anything is written."""
    from .. import flow_start

    registry = flow_start.registry_for(settings)
    try:
        return registry, flow_start.check_flow(settings, registry, flow_id)
    except flow_start.NotStartable as exc:
        _fail([str(exc)], summary)


def _start(settings: Settings, registry: FlowRegistry, flow: Flow, ids: list[int],
           actor: str, *, each: bool, skipped: Sequence[Refused] = ()) -> bool:
    """Start `flow` for `ids` and say what happened; False when someone was refused."""
    from .. import flow_start

    report = flow_start.start(settings, registry, flow, ids, actor=actor)
    _report_starts(report, each=each, skipped=skipped)
    return not report.refused


def _skipped(skipped: Sequence[Refused]) -> None:
    for r in skipped:
        click.echo(f"{r.code} (id {r.participant_id}) {r.reason}: skipped")


def _report_starts(report: Report, *, each: bool, skipped: Sequence[Refused]) -> None:
    name = f"{report.flow_id} v{report.version}"
    for s in report.started if each else ():
        notes = [_n(len(s.messages), "message")]
        if s.interrupted:
            notes.append(f"interrupted {', '.join(s.interrupted)}")
        click.echo(f"{s.code}: started {name} ({'; '.join(notes)})")
    for q in report.scheduled if each else ():
        click.echo(f"{q.code}: {name} starts when quiet hours end, {q.at:%Y-%m-%d %H:%M} local")
    _skipped(skipped)
    for r in report.refused:
        click.echo(f"error: {r.code} (id {r.participant_id}) {r.reason}: {report.flow_id} "
                   "not started", err=True)
    sent = len(report.message_ids)
    line = f"started {name} for {_n(len(report.started), 'participant')}"
    if report.scheduled:
        line += f", {len(report.scheduled)} scheduled for when their quiet hours end"
    if report.refused:
        line += f", {len(report.refused)} refused"
    if report.redis_error is not None:
        click.echo(f"{line}; {_n(sent, 'message')} wait in the outbox: Redis did not answer "
                   f"({report.redis_error}), so the scheduler's outbox sweep will queue them")
    else:
        click.echo(f"{line}; {_n(report.queued, 'message')} queued for sending")


def _no_region_hint(problems: list[str], region: str | None) -> str | None:
    if region is None and any("not a valid phone number" in p for p in problems):
        return "Numbers without a +country code need --region (for example --region US)."
    return None


@main.group("participants")
def participants_group() -> None:
    """Enrol, list, export and erase participants."""


@participants_group.command("add")
@click.option("--phone", required=True, help="Mobile number, best with +country code.")
@click.option("--code", required=True, help="The study's participant code.")
@click.option("--language", help="Language tag, e.g. es or es-MX (default: the study's).")
@click.option("--timezone", help="IANA time zone, e.g. America/Chicago (default: UTC).")
@click.option("--channel", type=click.Choice(pio.CHANNELS), default="sms", show_default=True)
@click.option("--checkin-time", metavar="HH:MM", help="Local time of the daily check-in.")
@region_option
@start_option
@actor_option
@click.pass_context
def add(ctx: click.Context, phone: str, code: str, language: str | None, timezone: str | None,
        channel: str, checkin_time: str | None, region: str | None, start_flow: str | None,
        actor: str | None) -> None:
    """Enrol one participant (and with --start, start a flow for them)."""
    region = _region(region)
    settings = open_database(ctx)
    to_start = (_flow_to_start(settings, start_flow, "Nobody was enrolled.")
                if start_flow else None)
    enrolment, problems = pio.check_enrolment(
        {"code": code, "phone": phone, "language": language or "", "timezone": timezone or "",
         "channel": channel, "checkin_time": checkin_time or ""},
        region=region, default_language=settings.default_language)
    if enrolment is None:
        _fail(problems, _no_region_hint(problems, region))
    try:
        with session_scope(settings.database_url) as s:
            p = pio.enrol(s, enrolment, actor=pio.staff_actor(actor))
    except pio.InvalidInput as exc:
        _fail(exc.problems)
    except IntegrityError:  # enrolled by someone else between our check and the insert
        _fail([f'code "{enrolment.code}" or its phone number was enrolled just now'])
    click.echo(f"enrolled {p.code} (id {p.id}): {mask_phone(p.phone)} by {p.channel}, "
               f"{p.language}, {p.timezone}, check-in {p.checkin_time or 'not set'}")
    if to_start is not None:
        assert p.id is not None
        if not _start(settings, *to_start, [p.id], pio.staff_actor(actor), each=False):
            raise SystemExit(1)


@participants_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@region_option
@start_option
@actor_option
@click.pass_context
def import_(ctx: click.Context, file: Path, region: str | None, start_flow: str | None,
            actor: str | None) -> None:
    """Enrol everyone in a CSV file, or no one if any row has a problem.

    Columns: code, phone, language, timezone, channel, checkin_time (only code and phone
    are required; empty cells take the defaults). With --start, the flow is started for
    each new participant once all of them are enrolled.
    """
    region = _region(region)
    settings = open_database(ctx)
    to_start = (_flow_to_start(settings, start_flow, "Nothing was imported.")
                if start_flow else None)
    data = file.read_bytes()
    try:
        with session_scope(settings.database_url) as s:
            enrolments = pio.read_enrolments(data, region=region, session=s,
                                             default_language=settings.default_language)
            added = pio.import_enrolments(s, enrolments, actor=pio.staff_actor(actor),
                                          source=file.name,
                                          sha256=hashlib.sha256(data).hexdigest())
    except pio.InvalidInput as exc:
        hint = _no_region_hint(exc.problems, region)
        _fail(exc.problems, f"Nothing was imported ({len(exc.problems)} problems)."
              + (f"\n{hint}" if hint else ""))
    except IntegrityError:
        _fail(["a code or phone number in the file was enrolled while importing"],
              "Nothing was imported.")
    click.echo(f"imported {len(added)} participants from {file.name}")
    if to_start is not None:
        ids = [p.id for p in added if p.id is not None]
        if not _start(settings, *to_start, ids, pio.staff_actor(actor), each=False):
            raise SystemExit(1)


@participants_group.command("start")
@click.argument("flow_id", metavar="FLOW")
@click.argument("idents", metavar="[ID_OR_CODE]...", nargs=-1)
@click.option("--all-new", is_flag=True,
              help="Everyone who has never had a conversation, instead of naming them.")
@click.option("--yes", is_flag=True, help="With --all-new: don't ask for confirmation.")
@actor_option
@click.pass_context
def start(ctx: click.Context, flow_id: str, idents: tuple[str, ...], all_new: bool, yes: bool,
          actor: str | None) -> None:
    """Start FLOW now for the participants named, or for everyone new (--all-new).

    Its first messages go out at once; for anyone in quiet hours they wait until quiet
    hours end. Participants who opted out or were erased are refused. One conversation at
    a time: a participant still waiting on a question has that conversation interrupted
    (the answers they gave are kept). Every start is audited.

    \b
    Examples:
      bot participants start onboarding --all-new      # everyone imported without --start
      bot participants start symptom_questionnaire P001 P002
    """
    from .. import flow_start

    if bool(idents) == all_new:
        raise click.UsageError("name the participants, or give --all-new (not both)")
    settings = open_database(ctx)
    registry, flow = _flow_to_start(settings, flow_id, "Nothing was started.")
    skipped: list[Refused] = []
    with session_scope(settings.database_url) as s:
        if all_new:
            ids, skipped = flow_start.never_started(s)
        else:
            found = {ident: pio.find(s, ident) for ident in dict.fromkeys(idents)}
            missing = [f'no participant "{i}"' for i, p in found.items() if p is None]
            if missing:
                _fail(missing, "Nothing was started.")
            ids = list(dict.fromkeys(p.id for p in found.values()
                                     if p is not None and p.id is not None))
    if all_new and not ids:
        _skipped(skipped)
        click.echo("nothing started: everyone who may be messaged has had a conversation")
        return
    if all_new and not yes:
        click.confirm(f"Start {flow.id} v{flow.version} for {_n(len(ids), 'participant')} "
                      "who never had a conversation?", abort=True)
    if not _start(settings, registry, flow, ids, pio.staff_actor(actor), each=True,
                  skipped=skipped):
        raise SystemExit(1)


@participants_group.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """Everyone enrolled, with masked phone numbers."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        rows = s.exec(select(Participant).order_by(Participant.id)).all()  # type: ignore[arg-type]
    if not rows:
        click.echo("no participants")
        return
    header = ("ID", "CODE", "PHONE", "CHANNEL", "LANG", "TIMEZONE", "CONSENT", "CHECK-IN")
    table = [header] + [
        (str(p.id), p.code, mask_phone(p.phone), p.channel, p.language, p.timezone,
         "erased" if p.erased_at else p.consent, p.checkin_time or "-")
        for p in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@participants_group.command("export")
@click.argument("participant", metavar="ID_OR_CODE")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of the screen.")
@actor_option
@click.pass_context
def export(ctx: click.Context, participant: str, output: Path | None,
           actor: str | None) -> None:
    """Everything held about a participant, as JSON (for an access request)."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        p = pio.find(s, participant)
        if p is None:
            _fail([f'no participant "{participant}"'])
        data = pio.export(s, p, actor=pio.staff_actor(actor))
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@participants_group.command("erase")
@click.argument("participant", metavar="ID_OR_CODE")
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
@actor_option
@click.pass_context
def erase(ctx: click.Context, participant: str, yes: bool, actor: str | None) -> None:
    """Stop all contact and delete what identifies a participant; protocol answers are kept
    under a pseudonym. Cannot be undone."""
    settings = open_database(ctx)
    with session_scope(settings.database_url) as s:
        p = pio.find(s, participant)
        if p is None:
            _fail([f'no participant "{participant}"'])
        if p.erased_at is not None:
            _fail([f"participant {p.id} ({p.code}) was already erased on {p.erased_at:%Y-%m-%d}"])
        if not yes:
            click.confirm(f"Erase participant {p.id} ({p.code})? This cannot be undone",
                          abort=True)
        result = pio.erase(s, p, actor=pio.staff_actor(actor), secret_key=settings.secret_key)
    click.echo(f"Erased participant {result.participant_id}; it is now {result.pseudonym}.")
    click.echo("Removed:")
    for line in result.removed:
        click.echo(f"  - {line}")
    click.echo("Kept:")
    for line in result.kept:
        click.echo(f"  - {line}")
