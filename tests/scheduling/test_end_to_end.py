"""End to end: `bot run` (web app, worker, scheduler, Twilio emulator) in subprocesses on
free ports with a temporary SQLite database, and `bot chat` as the participant's phone:
the onboarding, then a daily check-in fired by the scheduler, through the emulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli.run import midday_zone
from bot.store.db import dispose_engines, session_scope
from bot.store.models import Nudge, Participant
from bot.store.types import utcnow

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+15555550100"
BOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.argv[0] = 'bot'; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _delivered(emulator: str) -> list[str]:
    query = urllib.parse.urlencode({"to": PHONE})
    with urllib.request.urlopen(f"{emulator}/_emulator/messages?{query}", timeout=5) as r:
        return [m["body"] for m in json.load(r) if m["status"] == "delivered"]


def _chat(emulator: str, lines: str) -> str:
    done = subprocess.run(
        [*BOT, "chat", PHONE, "--emulator", emulator, "--pause", "2", "--wait", "4"],
        input=lines, capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)
    return done.stdout


@pytest.fixture
def stack(tmp_path, redis_url):
    web, emu = _free_port(), _free_port()
    db = tmp_path / "e2e.db"
    log = (tmp_path / "run.log").open("w")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [*BOT, "run", "--port", str(web), "--emulator-port", str(emu),
         "--database-url", f"sqlite:///{db}", "--redis-url", redis_url,
         "--scheduler-interval", "1", "--demo-timezone", midday_zone(datetime.now(UTC))],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    logfile = tmp_path / "run.log"
    try:
        yield f"sqlite:///{db}", f"http://127.0.0.1:{emu}", proc, logfile
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        dispose_engines(close=True)


def test_onboarding_and_a_daily_checkin_through_the_emulator(stack):
    url, emulator, proc, logfile = stack
    _wait_for(lambda: proc.poll() is not None or "onboarding has started" in logfile.read_text(),
              "bot run to start")
    assert proc.poll() is None, logfile.read_text()[-3000:]
    _wait_for(lambda: any("OK for us to send you text messages" in b
                          for b in _delivered(emulator)), "the consent question")

    out = _chat(emulator, "yes\n1\n1\n")
    assert "bot> Which language do you want for our messages?" in out
    assert "bot> Thank you, you are all set!" in out, out
    with session_scope(url) as db:
        p = db.exec(select(Participant).where(Participant.phone == PHONE)).one()
        assert p.code == "DEMO-001" and p.checkin_time == "08:30"
        # The planner put the next check-ins in the table. Make one due now.
        assert db.exec(select(Nudge).where(Nudge.kind == "checkin")).first() is not None
        db.add(Nudge(participant_id=p.id, kind="checkin", flow_id="daily_checkin",
                     due_at=utcnow(), dedupe_key="checkin:e2e"))

    _wait_for(lambda: any("How do you feel today?" in b for b in _delivered(emulator)),
              "the scheduler to fire the check-in")
    out = _chat(emulator, "8\nyes\nno\n")
    assert "bot> Did you take your study medicine today?" in out, out
    assert "bot> Thank you! That is all for today." in out, out
    with session_scope(url) as db:
        nudge = db.exec(select(Nudge).where(Nudge.dedupe_key == "checkin:e2e")).one()
        assert nudge.status == "done"

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    text = logfile.read_text()
    assert "Stopped." in text
    # Neither bodies nor the phone number went to the logs.
    logged = [line for line in text.splitlines() if line.startswith(("web", "worker",
                                                                   "scheduler"))]
    assert not [line for line in logged if PHONE in line or "How do you feel" in line]
