"""`bot outbox`: what the coordinator sees. Never a message's text or a whole number."""

from __future__ import annotations

import json

from click.testing import CliRunner
from redis import Redis
from rq import Queue

from bot import outbox
from bot.cli import main
from bot.config import Settings
from bot.store.db import session_scope
from workers import send

from .conftest import Emu, Maker

SECRET = "Your HbA1c result is 9.1"


def test_list_and_show_failures(ob_settings: Settings, ctx: send.SendContext, emu: Emu,
                                make_participant: Maker) -> None:
    url = ob_settings.database_url
    p, q = make_participant(), make_participant()
    with session_scope(url) as db:
        bad = outbox.enqueue(db, participant=p, body=SECRET, kind="nudge").id
        good = outbox.enqueue(db, participant=q, body=SECRET, kind="nudge").id
    emu.control.add_rule(21211, to=p.phone)
    send.deliver(ctx, [bad, good])
    runner = CliRunner()

    listed = runner.invoke(main, ["outbox", "list", "--problems"], obj=ob_settings)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.strip().splitlines()
    assert len(lines) == 1 and int(lines[0].split()[0]) == bad
    assert "failed" in lines[0] and "21211" in lines[0] and "invalid phone number" in lines[0]

    everything = runner.invoke(main, ["outbox", "list", "--json"], obj=ob_settings)
    rows = [json.loads(line) for line in everything.output.strip().splitlines()]
    assert {r["id"]: r["status"] for r in rows} == {bad: "failed", good: "queued"}
    assert rows[0]["to"].startswith("+16") and "*" in rows[0]["to"]

    shown = runner.invoke(main, ["outbox", "show", str(bad)], obj=ob_settings)
    assert shown.exit_code == 0, shown.output
    assert "last_error: 21211: invalid phone number" in shown.output
    assert "outbox.failed" in shown.output

    by_participant = runner.invoke(main, ["outbox", "list", "--participant", q.code],
                                   obj=ob_settings)
    assert [int(line.split()[0]) for line in by_participant.output.splitlines()] == [good]

    for result in (listed, everything, shown, by_participant):
        assert SECRET not in result.output
        assert p.phone not in result.output and q.phone not in result.output

    missing = runner.invoke(main, ["outbox", "show", "999999"], obj=ob_settings)
    assert missing.exit_code != 0 and "no outbound message" in missing.output


def test_sweep_command(ob_settings: Settings, make_participant: Maker, redis: Redis) -> None:
    with session_scope(ob_settings.database_url) as db:
        outbox.enqueue(db, participant=make_participant(), body="Hi", kind="nudge")
    result = CliRunner().invoke(main, ["outbox", "sweep"], obj=ob_settings)
    assert result.exit_code == 0, result.output
    assert "enqueued 1 message" in result.output
    assert len(Queue(outbox.QUEUE, connection=redis).jobs) == 1


def test_worker_command_in_burst_mode(ob_settings: Settings, emu: Emu,
                                      make_participant: Maker, redis: Redis) -> None:
    with session_scope(ob_settings.database_url) as db:
        outbox.dispatch_after_commit(db, redis)
        outbox.enqueue(db, participant=make_participant(), body="Hi", kind="nudge")
    result = CliRunner().invoke(main, ["worker", "--burst", "--quiet"], obj=ob_settings)
    assert result.exit_code == 0, result.output
    assert [m["body"] for m in emu.messages()] == ["Hi"]
