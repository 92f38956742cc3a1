"""`bot chat`: be a participant's phone in the terminal, against a running emulator + bot."""

from __future__ import annotations

import sys
import threading
from typing import Any

import click

from .groups import main

DELIVERED = frozenset({"delivered", "read"})
NOT_DELIVERED = frozenset({"failed", "undelivered", "canceled"})


class Phone:
    """Sends what is typed and shows what reaches this phone, in arrival order.

    Only delivered messages are shown: a message that ends `undelivered` never reached the
    handset, so it is reported as a failure notice instead of as text.
    """

    def __init__(
        self, control: Any, number: str, channel: str, to: str | None, name: str | None,
        interval: float,
    ) -> None:
        self.control = control
        self.number = number
        self.channel = channel
        self.to = to
        self.name = name
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cursor = 0
        self._pending: set[int] = set()
        self._seen: set[int] = set()
        self._thread = threading.Thread(target=self._watch, name="chat-poller", daemon=True)
        self._warned = False

    def start(self) -> None:
        # Skip what the phone received before this session.
        existing = self.control.messages(to=self.number)
        self._cursor = max((m["index"] + 1 for m in existing), default=0)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()

    def wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def send(self, text: str) -> None:
        from bot.emulator.control import EmulatorError

        extra = {"profile_name": self.name} if self.name else {}
        try:
            result = self.control.inbound(self.number, text, self.channel, self.to, **extra)
        except EmulatorError as err:
            click.echo(f"!! {err}", err=True)
            return
        if result.get("error"):
            error = result["error"]
            click.echo(f"!! the bot's webhook failed: {error['code']} {error['message']} "
                       f"({error['detail']})")

    def poll(self) -> None:
        from bot.emulator.control import EmulatorError

        with self._lock:
            since = min(self._pending, default=self._cursor)
            try:
                records = self.control.messages(to=self.number, since=since)
            except EmulatorError as err:
                if not self._warned:
                    click.echo(f"!! {err}", err=True)
                    self._warned = True
                return
            self._warned = False
            for record in records:
                self._show(record)

    def _show(self, record: dict[str, Any]) -> None:
        index = record["index"]
        self._cursor = max(self._cursor, index + 1)
        if index in self._seen or record["direction"] == "inbound":
            return
        status = record["status"]
        if status in DELIVERED:
            for line in (record["body"] or "").splitlines() or [""]:
                click.echo(f"bot> {line}")
            for url in record.get("media_urls") or []:
                click.echo(f"bot> [media] {url}")
        elif status in NOT_DELIVERED:
            click.echo(f"!! a message to this phone was {status}: "
                       f"{record['error_code']} {record['error_message'] or ''}".rstrip())
        else:
            self._pending.add(index)
            return
        self._pending.discard(index)
        self._seen.add(index)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()


@main.command("chat")
@click.argument("phone")
@click.option("--emulator", "emulator_url", default="http://127.0.0.1:8010", show_default=True,
              help="The running `bot emulator`.")
@click.option("--channel", type=click.Choice(["sms", "whatsapp"]),
              help="Default: whatsapp for whatsapp:+... numbers, else sms.")
@click.option("--to", "bot_number", help="The bot number to text (default: the emulator's).")
@click.option("--name", help="WhatsApp profile name.")
@click.option("--wait", default=2.0, show_default=True, type=float,
              help="With piped input: seconds to wait for replies after the last line.")
@click.option("--pause", default=0.0, show_default=True, type=float,
              help="With piped input: seconds to wait after each line.")
@click.option("--interval", default=0.3, show_default=True, type=float,
              help="Seconds between checks for new messages.")
def chat(
    phone: str,
    emulator_url: str,
    channel: str | None,
    bot_number: str | None,
    name: str | None,
    wait: float,
    pause: float,
    interval: float,
) -> None:
    """Text the bot as PHONE: type a line to send it, `/quit` to leave.

    Messages that reach PHONE are printed as `bot> ...`. Input can be piped:
    `printf 'hi\\nyes\\n' | bot chat +15551230001`.
    """
    from bot.emulator.addresses import is_e164, split_address
    from bot.emulator.control import EmulatorControl, EmulatorError

    prefixed, number = split_address(phone.strip())
    if not is_e164(number):
        raise click.BadParameter("an E.164 number such as +15551230001", param_hint="PHONE")
    channel = channel or prefixed
    control = EmulatorControl(emulator_url)
    try:
        control.health()
    except EmulatorError as err:
        raise click.ClickException(f"{err} (is `bot emulator` running?)") from err

    stdin = sys.stdin
    interactive = stdin.isatty()
    device = Phone(control, number, channel, bot_number, name, interval)
    device.start()
    if interactive:
        click.echo(f"Texting the bot as {number} over {channel}. /quit to leave.", err=True)
    quit_typed = False
    try:
        for raw in stdin:
            text = raw.rstrip("\r\n")
            if text.strip() == "/quit":
                quit_typed = True
                break
            if not text.strip():
                continue
            if not interactive:
                click.echo(f"you> {text}")
            device.send(text)
            if not interactive:
                # Show the replies to this line before the next one, so transcripts read in order.
                device.poll()
                if pause:
                    device.wait(pause)
        if not interactive and not quit_typed:
            device.wait(wait)
    except KeyboardInterrupt:
        pass
    finally:
        device.stop()
    sys.stdout.flush()
