"""`bot chat` against the emulator and a stand-in bot; `bot emulator` as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.emulator import EmulatorServer, twilio_client
from bot.emulator.control import EmulatorControl, EmulatorError

from .conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, PARTICIPANT, Receiver, twiml

ROOT = Path(__file__).resolve().parents[2]
BOT = [sys.executable, "-c", "from bot.cli import main; main()"]


class FakeBot:
    """Answers "hello" in TwiML; for "later" it answers nothing and, like an RQ worker,
    sends a message through the REST API a moment afterwards."""

    def __init__(self, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.workers: list[threading.Thread] = []

    def __call__(self, path: str, params: dict[str, str]) -> tuple[int, str, bytes]:
        if params["Body"] == "hello":
            return twiml("Hi! How are you feeling today?", "Reply 1-5.")
        if params["Body"] == "later":
            worker = threading.Thread(target=self._send_later, args=(params["From"],))
            self.workers.append(worker)
            worker.start()
        if params["Body"] == "crash":
            return 500, "text/plain", b"oops"
        return twiml()

    def _send_later(self, to: str) -> None:
        time.sleep(0.2)
        client = twilio_client(self.emulator.url, ACCOUNT_SID, AUTH_TOKEN)
        try:
            client.messages.create(to=to, from_=BOT_NUMBER, body="Reminder: visit tomorrow")
        except Exception:  # a rule may refuse it; the test looks at what the phone shows
            pass
        finally:
            client.http_client.session.close()

    def join(self) -> None:
        for worker in self.workers:
            worker.join()


@pytest.fixture
def fake_bot(emulator: EmulatorServer, receiver: Receiver) -> Iterator[FakeBot]:
    bot = FakeBot(emulator)
    receiver.responder = bot
    yield bot
    bot.join()


def test_piped_chat_prints_replies_in_order(emulator: EmulatorServer, fake_bot: FakeBot) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [*BOT, "chat", PARTICIPANT, "--emulator", emulator.url, "--wait", "1.5"],
        input="hello\nlater\n", capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )
    fake_bot.join()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "you> hello",
        "bot> Hi! How are you feeling today?",
        "bot> Reply 1-5.",
        "you> later",
        "bot> Reminder: visit tomorrow",
    ]


def test_chat_does_not_replay_history_and_stops_at_quit(
    emulator: EmulatorServer, fake_bot: FakeBot, receiver: Receiver
) -> None:
    EmulatorControl(emulator.url).inbound(PARTICIPANT, "hello")  # before the session
    result = CliRunner().invoke(
        main, ["chat", PARTICIPANT, "--emulator", emulator.url, "--wait", "0.2"],
        input="hello\n/quit\nnever sent\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "you> hello", "bot> Hi! How are you feeling today?", "bot> Reply 1-5."]
    assert [r.params["Body"] for r in receiver.on("/twilio/messages")] == ["hello", "hello"]


def test_chat_reports_undelivered_messages(
    emulator: EmulatorServer, fake_bot: FakeBot
) -> None:
    EmulatorControl(emulator.url).add_rule(30003, to=PARTICIPANT)
    result = CliRunner().invoke(
        main, ["chat", PARTICIPANT, "--emulator", emulator.url, "--wait", "1.0"],
        input="later\n",
    )
    fake_bot.join()
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "you> later",
        "!! a message to this phone was undelivered: 30003 Unreachable destination handset",
    ]


def test_chat_over_whatsapp_and_webhook_errors(
    emulator: EmulatorServer, fake_bot: FakeBot, receiver: Receiver
) -> None:
    result = CliRunner().invoke(
        main, ["chat", "whatsapp:" + PARTICIPANT, "--emulator", emulator.url, "--wait", "0.1",
               "--name", "Ana"],
        input="hello\ncrash\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "you> hello", "bot> Hi! How are you feeling today?", "bot> Reply 1-5."]
    assert "!! the bot's webhook failed: 11200 HTTP retrieval failure (HTTP 500)" in result.output
    first = receiver.on("/twilio/messages")[0]
    assert first.params["From"] == "whatsapp:" + PARTICIPANT
    assert first.params["ProfileName"] == "Ana"


def test_chat_needs_a_running_emulator() -> None:
    result = CliRunner().invoke(main, ["chat", PARTICIPANT, "--emulator", "http://127.0.0.1:9"],
                                input="hi\n")
    assert result.exit_code == 1
    assert "is `bot emulator` running?" in result.output


def test_chat_needs_an_e164_number() -> None:
    result = CliRunner().invoke(main, ["chat", "5551230001"], input="")
    assert result.exit_code == 2
    assert "E.164" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_emulator_command_serves_until_stopped(receiver: Receiver, stop: signal.Signals) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [*BOT, "emulator", "--port", str(port), "--account-sid", ACCOUNT_SID,
         "--auth-token", AUTH_TOKEN, "--webhook-url", receiver.url("/twilio/messages"),
         "--fail", "21610::1", "--delay", "0.01"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        control = EmulatorControl(url, timeout=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                control.health()
                break
            except EmulatorError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        client = twilio_client(url, ACCOUNT_SID, AUTH_TOKEN)
        with pytest.raises(Exception, match="21610|unsubscribed"):
            client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="private text")
        sent = client.messages.create(to=PARTICIPANT, from_=BOT_NUMBER, body="private text")
        client.http_client.session.close()
        assert sent.status == "queued"
        assert control.inbound(PARTICIPANT, "hi")["webhook_status"] == 200
    finally:
        proc.send_signal(stop)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # not left running to trouble the tests after this one
            out, err = proc.communicate()
            pytest.fail(f"the emulator did not stop on {stop.name}:\n{err[-2000:]}")
    assert proc.returncode == 0, err
    assert f"Twilio emulator on {url}" in out
    assert "stopped" in out
    assert "accepted SM" in err  # INFO logs are on by default...
    assert PARTICIPANT not in err and "private text" not in err  # ...and say no more than needed
