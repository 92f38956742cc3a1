"""`bot emulator`: a local Twilio Messages API for development and tests."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from .groups import main

if TYPE_CHECKING:
    from bot.emulator.rules import Rule

#: Where a web app started with the defaults (`bot run`, gunicorn) answers.
LOCAL_WEBHOOK = "http://localhost:8000/twilio/messages"


def _rules(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Rule]:
    from bot.emulator.rules import Rule, RuleError

    try:
        return [Rule.parse(v) for v in values]
    except RuleError as err:
        raise click.BadParameter(str(err)) from err


def _api_keys(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    keys: dict[str, str] = {}
    for value in values:
        sid, sep, secret = value.partition(":")
        if not sep or not sid.startswith("SK") or not secret:
            raise click.BadParameter(f"{value!r}: expected SKxxx:SECRET")
        keys[sid] = secret
    return keys


@main.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8010, show_default=True, type=int)
@click.option("--webhook-url", help="Where inbound messages are POSTed (and what is signed). "
              f"Default: PUBLIC_BASE_URL + /twilio/messages, else {LOCAL_WEBHOOK}.")
@click.option("--auth-token", help="Default: TWILIO_AUTH_TOKEN.")
@click.option("--account-sid", help="Default: TWILIO_ACCOUNT_SID.")
@click.option("--api-key", "api_keys", multiple=True, callback=_api_keys, metavar="SID:SECRET",
              help="Also accept this API key's Basic auth (repeatable).")
@click.option("--fail", "rules", multiple=True, callback=_rules, metavar="CODE[:TO][:TIMES]",
              help="Fail matching sends with a Twilio error code, e.g. 30003, "
              "21610:+15551230001, 20429::2 (repeatable).")
@click.option("--delay", default=0.05, show_default=True, type=float,
              help="Seconds between status steps (queued → sent → delivered).")
@click.option("--templates", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON file {"HX...": "Hello {{1}}"} to render content_sid sends.')
@click.option("-v", "--verbose", is_flag=True, help="Log every HTTP request (DEBUG).")
def emulator(
    host: str,
    port: int,
    webhook_url: str | None,
    auth_token: str | None,
    account_sid: str | None,
    api_keys: dict[str, str],
    rules: list[Rule],
    delay: float,
    templates: Path | None,
    verbose: bool,
) -> None:
    """Serve a Twilio-compatible Messages API on HOST:PORT.

    Point the bot at it with TWILIO_API_BASE_URL=http://HOST:PORT; talk to the bot as a
    participant with `bot chat +15551230001`.
    """
    from bot.config import Settings
    from bot.emulator import EmulatorConfig, EmulatorServer

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    template_map: dict[str, str] = {}
    if templates is not None:
        loaded = json.loads(templates.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise click.BadParameter("a JSON object of HX sid → text", param_hint="--templates")
        template_map = loaded
    settings = Settings.from_env()
    if webhook_url is None and not settings.public_base_url:
        webhook_url = LOCAL_WEBHOOK
    config = EmulatorConfig.from_settings(
        settings,
        webhook_url=webhook_url,
        auth_token=auth_token,
        account_sid=account_sid,
        api_keys=api_keys,
        rules=rules,
        step_delay=delay,
        templates=template_map,
    )
    try:
        server = EmulatorServer(config, host=host, port=port)
    except OSError as err:
        raise click.ClickException(f"cannot listen on {host}:{port}: {err}") from err
    click.echo(f"Twilio emulator on {server.url} (account {config.account_sid})")
    click.echo(f"  inbound messages go to {config.webhook_url}")
    click.echo(f"  point the bot here: TWILIO_API_BASE_URL={server.url}")
    for rule in server.emulator.rules.to_json():
        click.echo(f"  failing: {rule['code']} to {rule['to'] or 'anyone'}"
                   f" ({rule['times'] or 'every'} time(s))")
    # Process managers stop with SIGTERM: shut down as cleanly as on Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
