"""Real worker processes (`bot worker`), real Redis, the emulator: crashes and lost queues.

The promise under test: every due message reaches Twilio, at most one duplicate each, and
every duplicate is recorded; whatever happens to a worker or to Redis.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

import pytest
import sqlalchemy as sa
from redis import Redis
from sqlmodel import col, select

from bot import outbox
from bot.config import Settings
from bot.store.db import get_engine, session_scope
from bot.store.models import Participant
from bot.store.types import utcnow
from workers import send
from workers.sweep import sweep_outbox

from .conftest import Emu, daytime_zone, finish, rows, start_worker, wait_until

SENT = ("queued", "accepted", "sent", "delivered")


def enrol(url: str, count: int, start: int = 0, **fields: object) -> list[Participant]:
    now = utcnow()
    rows_ = [{"code": f"K{start + i:05d}", "phone": f"+1857555{start + i:04d}", "channel": "sms",
              "sms_consent": True, "language": "en", "timezone": daytime_zone(),
              "consent": "opted_in", "fields_json": "{}", "whatsapp_window_closed": False,
              "created_at": now, "updated_at": now, **fields}
             for i in range(count)]
    table = Participant.__table__  # type: ignore[attr-defined]
    with get_engine(url).begin() as conn:
        conn.execute(sa.insert(table), rows_)
    with session_scope(url) as db:
        return list(db.exec(select(Participant).where(
            col(Participant.code).in_([r["code"] for r in rows_])).order_by(col(Participant.id))))


def queue_messages(settings: Settings, redis: Redis, people: list[Participant]) -> list[int]:
    with session_scope(settings.database_url) as db:
        outbox.dispatch_after_commit(db, redis)
        return [int(outbox.enqueue(db, participant=p, body=f"Check-in for {p.code}",
                                   kind="nudge").id) for p in people]


@pytest.fixture
def proc_settings(ob_settings: Settings) -> Settings:
    # No status callbacks (nobody listens); a short lease so the test need not wait long.
    return replace(ob_settings, public_base_url="", outbox_lease_seconds=2,
                   outbox_batch_size=50, outbox_send_threads=8)


def test_kill_9_mid_batch_loses_nothing_and_duplicates_at_most_once(
        proc_settings: Settings, emu: Emu, redis: Redis) -> None:
    url = proc_settings.database_url
    people = enrol(url, 200)
    queue_messages(proc_settings, redis, people)
    emu.slow_down(0.1)  # ~80 sends a second with 8 threads: the kill lands mid-batch

    worker = start_worker(proc_settings)
    assert wait_until(lambda: len(emu.messages()) >= 40, timeout=30)
    worker.kill()  # SIGKILL: no clean-up of any kind
    worker.communicate(timeout=30)
    at_kill = len(emu.messages())
    assert at_kill < 200
    unrecorded = [m for m in rows(url) if m.twilio_sid is None]
    assert any(m.status == "sending" for m in unrecorded)  # it died holding rows

    time.sleep(proc_settings.outbox_lease_seconds + 0.5)
    for _ in range(3):  # sweep, drain, and again if a lease had not run out yet
        sweep_outbox(proc_settings, redis)
        finish(start_worker(proc_settings, "--burst"), timeout=120)
        if all(m.twilio_sid for m in rows(url)):
            break
        time.sleep(proc_settings.outbox_lease_seconds)

    stored = rows(url)
    assert len(stored) == 200
    assert all(m.status in SENT and m.twilio_sid for m in stored), Counter(
        m.status for m in stored)
    per_number = Counter(m["to"] for m in emu.messages())
    assert set(per_number) == {p.phone for p in people}  # every message arrived
    assert max(per_number.values()) <= 2  # at most one duplicate each
    by_phone = {m.address: m for m in stored}
    for phone, count in per_number.items():
        if count == 2:
            assert by_phone[phone].possible_duplicate, phone  # and it is on record
    # Only what was in flight or answered but not yet recorded can be sent twice.
    duplicates = sum(1 for c in per_number.values() if c == 2)
    assert duplicates <= proc_settings.outbox_send_threads + send.RECORD_GROUP


def test_flushing_redis_loses_nothing(proc_settings: Settings, emu: Emu, redis: Redis) -> None:
    url = proc_settings.database_url
    people = enrol(url, 500)
    queue_messages(proc_settings, redis, people)
    assert redis.llen(f"rq:queue:{outbox.QUEUE}") == 10
    redis.flushdb()  # every job and every mark gone
    assert sweep_outbox(proc_settings, redis) == 500
    workers = [start_worker(proc_settings, "--burst") for _ in range(2)]
    for w in workers:
        finish(w, timeout=120)
    assert all(m.status in SENT for m in rows(url)), Counter(
        (m.status, m.last_error) for m in rows(url))
    per_number = Counter(m["to"] for m in emu.messages())
    assert len(per_number) == 500 and set(per_number.values()) == {1}
    assert not any(m.possible_duplicate for m in rows(url))


def test_opted_out_participants_get_nothing(proc_settings: Settings, emu: Emu,
                                            redis: Redis) -> None:
    url = proc_settings.database_url
    people = enrol(url, 4)
    stopped = enrol(url, 1, start=100, consent="opted_out")
    queue_messages(proc_settings, redis, people + stopped)
    with get_engine(url).begin() as conn:  # one opts out after the message was queued
        conn.execute(sa.text("UPDATE participant SET consent = 'opted_out' WHERE id = :id"),
                     {"id": people[0].id})
    finish(start_worker(proc_settings, "--burst"))
    received = {m["to"] for m in emu.messages()}
    assert received == {p.phone for p in people[1:]}
    statuses = {m.address: m.status for m in rows(url)}
    assert statuses[people[0].phone] == "cancelled"
    assert statuses[stopped[0].phone] == "suppressed"


def test_scheduled_retries_need_the_scheduler(proc_settings: Settings, emu: Emu,
                                              redis: Redis) -> None:
    """20429 once: the job is scheduled ~5 s out; `--with-scheduler` brings it back."""
    url = proc_settings.database_url
    (p,) = enrol(url, 1)
    queue_messages(proc_settings, redis, [p])
    emu.control.add_rule(20429, times=1)
    worker = start_worker(proc_settings, "--with-scheduler")
    try:
        assert wait_until(lambda: rows(url)[0].status in SENT, timeout=30)
    finally:
        worker.terminate()
        worker.communicate(timeout=30)
    (msg,) = rows(url)
    assert msg.attempts == 2 and msg.twilio_sid
    assert len(emu.messages()) == 1
