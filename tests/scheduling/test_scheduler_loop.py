"""The scheduler loop against a real Redis: jobs carry ids, are deduplicated, and a Redis
flush loses nothing because the database is the truth."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlmodel import SQLModel

from bot.store.db import session_scope
from bot.store.types import utcnow
from workers import nudge as nudge_job
from workers.scheduler import Scheduler, nudge_job_id

from .conftest import nudge_rows, outbound

COUNT = 500


@pytest.fixture
def loop_settings(sched_settings, redis_url):
    return replace(sched_settings, redis_url=redis_url)


@pytest.fixture
def redis(redis_url):
    conn = Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def worker_context(loop_settings, redis):
    ctx = nudge_job.NudgeContext.create(loop_settings, redis)
    nudge_job.set_context(ctx)
    yield ctx
    nudge_job.set_context(None)


def _midday_zone(now):
    """A zone where it is about noon now, so quiet hours never get in the way."""
    k = (12 - now.hour) % 24
    k = k - 24 if k > 12 else k
    return "UTC" if k == 0 else f"Etc/GMT{-k:+d}"


def _many_due_checkins(url, now, count=COUNT):
    zone = _midday_zone(now)
    p, n = SQLModel.metadata.tables["participant"], SQLModel.metadata.tables["nudge"]
    with session_scope(url) as db:
        conn = db.connection()
        conn.execute(sa.insert(p), [
            {"code": f"L-{i:04d}", "phone": f"+1555{i:07d}", "channel": "sms",
             "sms_consent": True, "language": "en", "timezone": zone, "consent": "opted_in",
             "checkin_time": None, "fields_json": "{}", "whatsapp_window_closed": False,
             "created_at": now, "updated_at": now} for i in range(count)])
        ids = conn.execute(sa.select(p.c.id).order_by(p.c.id)).scalars().all()
        conn.execute(sa.insert(n), [
            {"participant_id": pid, "kind": "checkin", "flow_id": "daily_checkin",
             "params_json": "{}", "due_at": now - timedelta(minutes=1), "status": "pending",
             "dedupe_key": f"checkin:{pid}:test", "created_at": now} for pid in ids])


def _work(redis):
    SimpleWorker([Queue(nudge_job.QUEUE, connection=redis)], connection=redis).work(
        burst=True, logging_level="WARNING")


def test_a_redis_flush_with_500_nudges_pending_loses_none(loop_settings, redis,
                                                          worker_context):
    now = utcnow()
    _many_due_checkins(loop_settings.database_url, now)
    loop = Scheduler(loop_settings, redis, plan_every=timedelta(days=1))
    first = loop.tick(now)
    assert (first.due, first.enqueued, first.errors) == (COUNT, COUNT, [])

    redis.flushdb()  # every job is gone
    again = loop.tick(now + timedelta(seconds=15))
    assert (again.due, again.enqueued) == (COUNT, COUNT)
    assert loop.tick(now + timedelta(seconds=30)).enqueued == 0  # one job per nudge

    _work(redis)
    left = [(n.id, n.status, n.due_at, n.params_json) for n in
            nudge_rows(loop_settings.database_url, kind="checkin")
            if n.dedupe_key.endswith(":test") and n.status != "done"]
    assert left == []
    sent = outbound(loop_settings.database_url)
    assert len(sent) == COUNT and {m.status for m in sent} == {"pending"}
    assert loop.tick(now + timedelta(seconds=45)).due == 0

    # The messages' send jobs vanish too: the outbox sweep in the same loop brings them back.
    redis.flushdb()
    assert loop.tick(utcnow() + timedelta(seconds=1)).swept == COUNT


def test_jobs_carry_the_nudge_id_only(loop_settings, redis):
    now = utcnow()
    _many_due_checkins(loop_settings.database_url, now, count=3)
    Scheduler(loop_settings, redis, plan_every=timedelta(days=1), sweep=False).tick(now)
    (first, *_rest) = nudge_rows(loop_settings.database_url, kind="checkin")
    job = Job.fetch(nudge_job_id(first.id, first.due_at), connection=redis)
    assert job.func_name == "workers.nudge.fire_nudge"
    assert job.args == (first.id,) and job.kwargs == {}
    assert job.origin == "nudges"
    assert first.claimed_at is not None


def test_a_postponed_nudge_gets_a_new_job(loop_settings, redis):
    due = utcnow()
    assert nudge_job_id(7, due) != nudge_job_id(7, due + timedelta(minutes=30))
    assert nudge_job_id(7, due) == nudge_job_id(7, due)


def test_one_failing_step_does_not_stop_the_others(loop_settings, redis):
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    tick = Scheduler(loop_settings, broken).tick(utcnow())
    assert tick.planned is not None  # planning needs only the database
    assert "sweep" in tick.errors or tick.swept == 0


def test_the_scheduler_plans_when_it_starts_and_then_every_plan_every(loop_settings, redis):
    from .conftest import enrol

    enrol(loop_settings.database_url)
    loop = Scheduler(loop_settings, redis, plan_every=timedelta(minutes=10), sweep=False)
    now = utcnow()
    assert loop.tick(now).planned is not None
    assert loop.tick(now + timedelta(minutes=5)).planned is None
    assert loop.tick(now + timedelta(minutes=10)).planned is not None


def test_bot_scheduler_once(loop_settings, redis):
    from click.testing import CliRunner

    from bot.cli import main

    from .conftest import enrol

    enrol(loop_settings.database_url)
    result = CliRunner().invoke(main, ["scheduler", "--once"], obj=loop_settings,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "new nudges, 0 due, 0 enqueued, 0 messages swept" in result.output
    assert nudge_rows(loop_settings.database_url, kind="checkin")


def test_bot_run_says_how_to_get_redis_when_none_answers(capsys):
    from bot.cli.run import _ensure_redis

    with pytest.raises(SystemExit) as stop:
        _ensure_redis("redis://redis.invalid:6379/0")
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert "answers at redis://redis.invalid:6379/0" in err
    assert "apt-get install redis-server" in err


def test_a_job_that_fails_is_enqueued_again_after_the_failure_ttl(loop_settings, redis):
    from workers.scheduler import FAILURE_TTL_S

    now = utcnow()
    _many_due_checkins(loop_settings.database_url, now, count=1)
    loop = Scheduler(loop_settings, redis, plan_every=timedelta(days=1), sweep=False)
    assert loop.tick(now).enqueued == 1
    # The worker cannot reach its database: the job fails, the nudge stays pending.
    down = replace(loop_settings, database_url="postgresql+psycopg://postgres@127.0.0.1:1/x")
    nudge_job.set_context(nudge_job.NudgeContext.create(down, redis))
    try:
        _work(redis)
    finally:
        nudge_job.set_context(None)
    (n,) = [n for n in nudge_rows(loop_settings.database_url, kind="checkin")
            if n.dedupe_key.endswith(":test")]
    assert n.status == "pending"
    key = Job.key_for(nudge_job_id(n.id, n.due_at))
    assert 0 < redis.ttl(key) <= FAILURE_TTL_S
    assert loop.tick(now + timedelta(seconds=15)).enqueued == 0  # not while the job is kept
    redis.delete(key)  # what the TTL does
    assert loop.tick(now + timedelta(seconds=30)).enqueued == 1
