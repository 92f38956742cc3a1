"""`bot run`: the whole bot on one machine, on embedded defaults, for trying it out.

Starts, as child processes: the web app (gunicorn), a worker (`bot worker`), the scheduler
(`bot scheduler`) and the Twilio emulator (`bot emulator`), with SQLite in `instance/` and a
local Redis (started here if none answers and `redis-server` is installed). The app and the
worker send through the emulator, so no Twilio account is needed: `bot chat` is the phone.
Ctrl-C stops everything, the Redis started here included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import FrameType
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

import click

from .groups import main

if TYPE_CHECKING:
    from ..config import Settings

DEMO_PHONE = "+15555550100"
DEMO_CODE = "DEMO-001"
#: How long each part may take to answer after it was started.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
WORKER_QUEUES = "outbox,nudges,default"
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

REDIS_HELP = """\
The bot needs Redis (it carries the work between the web app and the workers), and none
answers at {url}.

Install it and run this again; `bot run` starts it for you once it is installed:
  Debian/Ubuntu:  sudo apt-get install redis-server
  macOS:          brew install redis
  or with Docker: docker run --rm -p 6379:6379 redis:7
Or point --redis-url (REDIS_URL) at a Redis you have."""


def _bot(*args: str) -> list[str]:
    """The `bot` command in a child process, with this very Python."""
    return [sys.executable, "-c", "import sys; from bot.cli import main; "
            "sys.argv[0] = 'bot'; main()", *args]


def _local_zone() -> str:
    """This machine's IANA time zone, for the demo participant; UTC when unknown."""
    from zoneinfo import ZoneInfo

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if not name:
            continue
        try:
            ZoneInfo(name)
        except (KeyError, ValueError):
            continue
        return name
    return "UTC"


# ---- Redis ---------------------------------------------------------------------------------


def _redis_answers(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()


def _ensure_redis(url: str) -> bool:
    """Make sure Redis answers; True when it was started here (and is ours to stop)."""
    if _redis_answers(url):
        return False
    parts = urlsplit(url)
    server = shutil.which("redis-server")
    if parts.hostname not in _LOCAL_HOSTS or server is None:
        click.echo(REDIS_HELP.format(url=url), err=True)
        raise SystemExit(1)
    port = str(parts.port or 6379)
    click.echo(f"Starting a local Redis on port {port} (nothing is saved to disk) ...")
    subprocess.run(  # noqa: S603 - a fixed command line
        [server, "--daemonize", "yes", "--port", port, "--save", "", "--appendonly", "no"],
        check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _redis_answers(url):
        if time.monotonic() > deadline:
            click.echo(f"Redis did not start on port {port}.", err=True)
            raise SystemExit(1)
        time.sleep(0.1)
    return True


def _stop_redis(url: str) -> None:
    from redis import Redis
    from redis.exceptions import RedisError

    # Shutting down closes the connection under us: that error is the success.
    with contextlib.suppress(RedisError):
        Redis.from_url(url, socket_connect_timeout=1).shutdown(nosave=True)


# ---- child processes ---------------------------------------------------------------------


@dataclass
class _Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[str] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)


class _Stack:
    """The child processes: started in order, their output prefixed with their name,
    stopped together (each in its own process group, so Ctrl-C reaches us first and the
    order of stopping is ours)."""

    def __init__(self, env: dict[str, str], out: IO[str]) -> None:
        self.env = env
        self.out = out
        self.children: list[_Child] = []
        self._lock = threading.Lock()
        self.width = 9

    def start(self, name: str, argv: Sequence[str]) -> _Child:
        child = _Child(name, list(argv))
        child.proc = subprocess.Popen(  # noqa: S603 - our own commands
            child.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        child.pump = threading.Thread(target=self._pump, args=(child,), daemon=True,
                                      name=f"out-{name}")
        child.pump.start()
        self.children.append(child)
        return child

    def _pump(self, child: _Child) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        for line in child.proc.stdout:
            with self._lock:
                self.out.write(f"{child.name:<{self.width}}| {line}")
                self.out.flush()

    def exited(self) -> _Child | None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                return child
        return None

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait()
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=1)


def _wait_http(url: str, stack: _Stack, what: str, stopping: threading.Event) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not stopping.is_set():
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - our own local URL
                return
        except urllib.error.HTTPError:
            return  # it answers, even if it is not happy yet (e.g. 503 while Redis warms up)
        except (urllib.error.URLError, OSError):
            pass
        gone = stack.exited()
        if gone is not None:
            raise click.ClickException(f"{gone.name} stopped while starting (see above)")
        if time.monotonic() > deadline:
            raise click.ClickException(f"{what} did not answer at {url}")
        time.sleep(0.2)


# ---- the demo participant ---------------------------------------------------------------


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about midday at `now`."""
    ahead = (12 - now.hour) % 24
    ahead = ahead - 24 if ahead > 12 else ahead
    # POSIX signs: Etc/GMT-5 is five hours *ahead* of UTC.
    return "UTC" if ahead == 0 else f"Etc/GMT{-ahead:+d}"


def _daytime_zone(zone: str, flows_dir: str, now: datetime | None = None) -> str:
    """`zone`, unless it is quiet hours there now: then a fixed-offset zone where it is
    about midday, so the demo's first messages go out at once instead of next morning."""
    from ..nudges import load_study_schedule
    from ..schedule import ScheduleError, as_zone, defer

    now = now or datetime.now(UTC)
    try:
        if defer(now, as_zone(zone), load_study_schedule(flows_dir).quiet) == now:
            return zone
    except ScheduleError:
        return zone
    daytime = midday_zone(now)
    click.echo(f"It is quiet hours in {zone} now, so the demo participant lives in {daytime} "
               "(about midday): their messages go out at once. `--demo-timezone` chooses.")
    return daytime


def _enrol_demo(database_url: str, phone: str, zone: str, language: str) -> bool:
    """Enrol the demo participant unless someone has that number; True when enrolled now."""
    from sqlmodel import select

    from .. import participants
    from ..store.db import session_scope
    from ..store.models import Participant

    with session_scope(database_url) as db:
        if participants.find_by_phone(db, phone) is not None:
            return False
        code = DEMO_CODE
        if db.exec(select(Participant.id).where(Participant.code == code)).first() is not None:
            code = f"DEMO-{phone[-4:]}"
        participants.add(db, actor="system:run", phone=phone, code=code, language=language,
                         timezone=zone)
    return True


def _start_onboarding(settings: Settings, phone: str) -> None:
    from redis import Redis

    from .. import conversation, outbox, participants
    from ..flow_registry import FlowRegistry
    from ..store.db import session_scope
    from ..store.types import utcnow

    redis = Redis.from_url(settings.redis_url)
    try:
        with session_scope(settings.database_url) as db:
            outbox.dispatch_after_commit(db, redis)
            p = participants.find_by_phone(db, phone)
            assert p is not None
            conversation.start_flow(db, p, "onboarding", utcnow(), settings=settings,
                                    registry=FlowRegistry(settings.flows_dir))
    finally:
        redis.close()


# ---- the command ---------------------------------------------------------------------------


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the web app listens.")
@click.option("--port", default=8000, show_default=True, type=int, help="The web app's port.")
@click.option("--emulator-port", default=8010, show_default=True, type=int,
              help="The Twilio emulator's port.")
@click.option("--database-url", help="Default: SQLite in instance/.")
@click.option("--redis-url", default="redis://127.0.0.1:6379/0", show_default=True)
@click.option("--demo-phone", default=DEMO_PHONE, show_default=True,
              help="The demo participant's number (what `bot chat` texts from).")
@click.option("--demo-language", default="en", show_default=True)
@click.option("--demo-timezone", help="Default: this machine's time zone.")
@click.option("--no-demo", is_flag=True, help="Enrol no demo participant.")
@click.option("--scheduler-interval", default=15.0, show_default=True, type=float,
              metavar="SECONDS", help="Seconds between scheduler passes.")
def run(host: str, port: int, emulator_port: int, database_url: str | None, redis_url: str,
        demo_phone: str, demo_language: str, demo_timezone: str | None, no_demo: bool,
        scheduler_interval: float) -> None:
    """Start the bot locally: web app, worker, scheduler and a Twilio emulator.

    Then text the bot as the demo participant from another terminal with
    `bot chat +15555550100`. Ctrl-C stops everything.
    """
    from .. import logs
    from ..config import Settings
    from ..store import schema

    if not logs.is_configured():
        logs.configure()
    web_url = f"http://{host}:{port}"
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    # Embedded defaults: SQLite in instance/ unless asked otherwise, whatever .env says.
    settings = replace(Settings.from_env(), database_url=database_url or Settings().database_url,
                       redis_url=redis_url, twilio_api_base_url=emulator_url,
                       public_base_url=web_url)
    started_redis = _ensure_redis(settings.redis_url)
    # Migrate once here, before several processes open the database.
    schema.upgrade(settings.database_url)
    enrolled = False
    if not no_demo:
        zone = demo_timezone or _daytime_zone(_local_zone(), settings.flows_dir)
        enrolled = _enrol_demo(settings.database_url, demo_phone, zone, demo_language)

    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "TWILIO_API_BASE_URL": emulator_url, "PUBLIC_BASE_URL": web_url,
           "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
           "TWILIO_AUTH_TOKEN": settings.twilio_auth_token, "PYTHONUNBUFFERED": "1"}
    stack = _Stack(env, sys.stdout)
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        stack.start("emulator", _bot("emulator", "--host", "127.0.0.1", "--port",
                                     str(emulator_port), "--webhook-url",
                                     f"{web_url}/twilio/messages"))
        stack.start("web", [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads",
                            "4", "--bind", f"{host}:{port}", "bot:create_app()"])
        stack.start("worker", _bot("worker", "--with-scheduler", "--queues", WORKER_QUEUES))
        stack.start("scheduler", _bot("scheduler", "--interval", str(scheduler_interval)))
        _wait_http(f"{emulator_url}/_emulator/health", stack, "The Twilio emulator", stopping)
        _wait_http(f"{web_url}/healthz", stack, "The web app", stopping)
        if not stopping.is_set():
                    _welcome(stack, settings, web_url, emulator_url, demo_phone, enrolled, no_demo)
        while not stopping.wait(0.5):
            gone = stack.exited()
            if gone is not None:
                click.echo(f"{gone.name} stopped unexpectedly (exit code "
                           f"{gone.proc.returncode if gone.proc else '?'}); stopping the rest.",
                           err=True)
                code = 1
                break
    finally:
        click.echo("Stopping ...")
        stack.stop()
        if started_redis:
            _stop_redis(settings.redis_url)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code:
        raise SystemExit(code)
    click.echo("Stopped.")


def _welcome(stack: _Stack, settings: Settings, web_url: str, emulator_url: str, phone: str,
             enrolled: bool, no_demo: bool) -> None:
    database = (settings.database_url.split("///", 1)[-1]
                if settings.database_url.startswith("sqlite") else "(from --database-url)")
    say = [
        "",
        "The bot is running on this machine:",
        f"  web app         {web_url}   (Twilio's webhook: {web_url}/twilio/messages)",
        f"  Twilio emulator {emulator_url}   (stands in for Twilio; no messages leave here)",
        f"  database        {database}",
        "",
    ]
    if no_demo:
        say += ["Enrol someone with `bot participants add`, then text the bot with",
                "  .venv/bin/bot chat <their number>", ""]
    else:
        say += ["To text the bot as the demo participant, open another terminal and run:",
                "",
                f"  .venv/bin/bot chat {phone}",
                "",
                "Type a line and press Enter to send it; the bot's answers appear as `bot> ...`."]
        if enrolled:
            interactive = sys.stdin is not None and sys.stdin.isatty()
            if interactive:
                say += ["Once the chat is open, press Enter here: the bot then starts the demo",
                        "participant's first conversation (welcome, consent, language, check-in",
                        "time) and its messages appear in the chat."]
            _echo(stack, say + ["Press Ctrl-C to stop everything.", ""])
            if interactive:
                threading.Thread(target=_onboard_on_enter, args=(stack, settings, phone),
                                 daemon=True).start()
            else:
                _onboard(stack, settings, phone)
            return
        say += ["The demo participant was enrolled earlier: text them in, or wait for their",
                "daily check-in (see docs/scheduling.md)."]
    _echo(stack, say + ["Press Ctrl-C to stop everything.", ""])


def _echo(stack: _Stack, lines: list[str]) -> None:
    with stack._lock:
        for line in lines:
            stack.out.write(line + "\n")
        stack.out.flush()


def _onboard_on_enter(stack: _Stack, settings: Settings, phone: str) -> None:
    try:
        sys.stdin.readline()
    except (OSError, ValueError):
        return
    _onboard(stack, settings, phone)


def _onboard(stack: _Stack, settings: Settings, phone: str) -> None:
    try:
        _start_onboarding(settings, phone)
    except Exception as exc:  # noqa: BLE001 - say so; the rest keeps running
        _echo(stack, [f"Could not start the onboarding: {type(exc).__name__}: {exc}"])
        return
    _echo(stack, ["The demo participant's onboarding has started: answer it in `bot chat`."])
