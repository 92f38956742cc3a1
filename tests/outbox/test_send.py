"""The send job against the emulator, in this process: claims, errors, retries, consent."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from sqlmodel import select

from bot import delivery, outbox
from bot.config import Settings
from bot.store.db import get_engine, session_scope
from bot.store.models import AuditEntry, ConsentChange, Message
from bot.store.types import utcnow
from workers import send
from workers.sweep import sweep_outbox

from .conftest import Emu, Maker, daytime_zone, reload, row, rows


def put(url: str, p, body: str = "How are you today?", **kw) -> int:  # type: ignore[no-untyped-def]
    with session_scope(url) as db:
        return int(outbox.enqueue(db, participant=p, body=body, kind=kw.pop("kind", "nudge"),
                                  **kw).id)


def test_sends_and_records_the_sid(ob_settings: Settings, ctx: send.SendContext, emu: Emu,
                                   make_participant: Maker) -> None:
    url = ob_settings.database_url
    ps = [make_participant() for _ in range(12)]
    ids = [put(url, p, f"Question {i}") for i, p in enumerate(ps)]
    counts = send.deliver(ctx, ids)
    assert counts["sent"] == 12 and counts["claimed"] == 12
    got = {m["to"]: m for m in emu.messages()}
    for mid, p in zip(ids, ps, strict=True):
        msg = row(url, mid)
        assert msg.status == "queued" and msg.attempts == 1 and not msg.possible_duplicate
        assert msg.twilio_sid == got[p.phone]["sid"]
        assert msg.sender == ob_settings.sms_from and msg.sent_at is not None
        assert got[p.phone]["body"] == msg.body


def test_a_row_is_sent_once_however_often_its_job_runs(ob_settings: Settings,
                                                      ctx: send.SendContext, emu: Emu,
                                                      make_participant: Maker) -> None:
    mid = put(ob_settings.database_url, make_participant())
    assert send.deliver(ctx, [mid])["sent"] == 1
    assert send.deliver(ctx, [mid]) == {**send.Counts(skipped=1).as_dict()}
    assert len(emu.messages()) == 1


def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(
        ob_settings: Settings, ctx: send.SendContext, emu: Emu, make_participant: Maker) -> None:
    url = ob_settings.database_url
    mid = put(url, make_participant())
    now = utcnow()
    with session_scope(url) as db:  # a worker claimed it, then died before recording
        assert [c.id for c in send.claim(ctx, db, [mid], now, send.Counts())] == [mid]
    assert send.deliver(ctx, [mid], now=now + timedelta(seconds=30))["skipped"] == 1
    assert emu.messages() == []
    lease = ob_settings.outbox_lease_seconds
    assert send.deliver(ctx, [mid], now=now + timedelta(seconds=lease + 1))["sent"] == 1
    msg = row(url, mid)
    assert msg.possible_duplicate and msg.attempts == 2 and msg.status == "queued"


def test_rows_not_yet_due_wait(ob_settings: Settings, ctx: send.SendContext, emu: Emu,
                               make_participant: Maker) -> None:
    mid = put(ob_settings.database_url, make_participant(),
              due_at=utcnow() + timedelta(minutes=5))
    assert send.deliver(ctx, [mid])["skipped"] == 1
    assert emu.messages() == []


def test_opted_out_since_enqueue_is_cancelled_not_sent(ob_settings: Settings,
                                                      ctx: send.SendContext, emu: Emu,
                                                      make_participant: Maker) -> None:
    url = ob_settings.database_url
    p = make_participant()
    mid = put(url, p)
    with get_engine(url).begin() as conn:  # e.g. STOP through another number
        conn.execute(sa.text("UPDATE participant SET consent = 'opted_out' WHERE id = :id"),
                     {"id": p.id})
    assert send.deliver(ctx, [mid])["cancelled"] == 1
    assert row(url, mid).status == "cancelled"
    assert emu.messages() == []


def test_an_urgent_override_still_goes_to_an_opted_out_participant(
        ob_settings: Settings, ctx: send.SendContext, emu: Emu, make_participant: Maker) -> None:
    url = ob_settings.database_url
    p = make_participant()
    with session_scope(url) as db:
        fresh = reload(url, p)
        fresh.consent = "opted_out"
        db.add(fresh)
        db.add(ConsentChange(participant_id=p.id, state="opted_out", source="keyword",
                             at=utcnow() - timedelta(minutes=1)))
    with session_scope(url) as db:
        fresh = reload(url, p)
        urgent = outbox.enqueue(db, participant=fresh, body="Please call 911", kind="safety",
                                urgent=True, override_consent=True).id
    assert send.deliver(ctx, [urgent])["sent"] == 1
    assert [m["body"] for m in emu.messages()] == ["Please call 911"]


def test_too_many_requests_then_success_is_retried(ob_settings: Settings,
                                                  ctx: send.SendContext, emu: Emu,
                                                  make_participant: Maker,
                                                  redis: Redis) -> None:
    url = ob_settings.database_url
    mid = put(url, make_participant())
    emu.control.add_rule(20429, times=1)
    before = utcnow()
    assert send.deliver(ctx, [mid])["retried"] == 1
    msg = row(url, mid)
    assert (msg.status, msg.error_code, msg.attempts, msg.twilio_sid) == ("pending", 20429, 1,
                                                                          None)
    assert msg.due_at is not None and msg.due_at > before
    assert "too many requests" in (msg.last_error or "")
    # A job is scheduled for the retry time; run it then.
    assert Queue(outbox.QUEUE, connection=redis).scheduled_job_registry.get_job_ids()
    assert send.deliver(ctx, [mid], now=msg.due_at + timedelta(seconds=1))["sent"] == 1
    msg = row(url, mid)
    assert msg.status == "queued" and msg.attempts == 2 and msg.error_code is None
    assert len(emu.messages()) == 1


@pytest.mark.parametrize("code", [500, 503])
def test_server_errors_are_retried(ob_settings: Settings, ctx: send.SendContext, emu: Emu,
                                   make_participant: Maker, code: int) -> None:
    mid = put(ob_settings.database_url, make_participant())
    emu.control.add_rule(code, times=1)
    assert send.deliver(ctx, [mid])["retried"] == 1
    assert row(ob_settings.database_url, mid).status == "pending"


def test_a_connection_error_is_retried(ob_settings: Settings, redis: Redis,
                                       make_participant: Maker) -> None:
    settings = replace(ob_settings, twilio_api_base_url="http://127.0.0.1:9")
    mid = put(settings.database_url, make_participant())
    context = send.SendContext.create(settings, redis, status_callback=False)
    try:
        assert send.deliver(context, [mid])["retried"] == 1
    finally:
        context.close()
    msg = row(settings.database_url, mid)
    assert msg.status == "pending" and msg.error_code is None
    assert msg.last_error == "could not connect to Twilio"
    assert not msg.possible_duplicate  # refused: the request never left


def test_transient_errors_give_up_after_max_attempts(ob_settings: Settings,
                                                    ctx: send.SendContext, emu: Emu,
                                                    make_participant: Maker) -> None:
    url = ob_settings.database_url
    mid = put(url, make_participant())
    emu.control.add_rule(20429)
    now = utcnow()
    for _ in range(delivery.MAX_ATTEMPTS):
        now += delivery.MAX_BACKOFF + timedelta(seconds=1)
        send.deliver(ctx, [mid], now=now)
    msg = row(url, mid)
    assert (msg.status, msg.error_code, msg.attempts) == ("failed", 20429, delivery.MAX_ATTEMPTS)
    assert "gave up after 5 attempts" in (msg.last_error or "")
    with session_scope(url) as db:
        assert db.exec(select(AuditEntry).where(AuditEntry.action == "outbox.failed",
                                                AuditEntry.entity_id == str(mid))).one()


def test_opted_out_at_twilio_opts_out_and_cancels_the_rest(ob_settings: Settings,
                                                          ctx: send.SendContext, emu: Emu,
                                                          make_participant: Maker) -> None:
    url = ob_settings.database_url
    p, other = make_participant(), make_participant()
    first = put(url, p, "First")
    later = [put(url, p, "Second"), put(url, p, "Third", due_at=utcnow() + timedelta(hours=1))]
    theirs = put(url, other, "Not affected")
    emu.control.add_rule(21610, to=p.phone)
    counts = send.deliver(ctx, [first])
    assert counts["failed"] == 1
    assert (row(url, first).status, row(url, first).error_code) == ("failed", 21610)
    assert [row(url, i).status for i in later] == ["cancelled", "cancelled"]
    assert reload(url, p).consent == "opted_out"
    with session_scope(url) as db:
        change = db.exec(select(ConsentChange).where(ConsentChange.participant_id == p.id,
                                                     ConsentChange.state == "opted_out")).one()
    assert change.source == "error_21610"
    assert send.deliver(ctx, later + [theirs])["sent"] == 1
    assert [m["to"] for m in emu.messages()] == [other.phone]


@pytest.mark.parametrize("code", [21211, 21614])
def test_invalid_numbers_fail_for_good(ob_settings: Settings, ctx: send.SendContext, emu: Emu,
                                       make_participant: Maker, code: int) -> None:
    url = ob_settings.database_url
    p = make_participant()
    mid = put(url, p)
    emu.control.add_rule(code, to=p.phone)
    assert send.deliver(ctx, [mid])["failed"] == 1
    msg = row(url, mid)
    assert (msg.status, msg.error_code) == ("failed", code)
    assert p.phone not in (msg.last_error or "") and p.phone[2:] not in (msg.last_error or "")
    with session_scope(url) as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "outbox.failed")).one()
    assert json.loads(entry.new_json or "{}")["error_code"] == code
    assert send.deliver(ctx, [mid])["skipped"] == 1  # final: never again


def test_our_rate_limit_hands_the_row_back_without_using_an_attempt(
        ob_settings: Settings, redis: Redis, emu: Emu, make_participant: Maker) -> None:
    settings = replace(ob_settings, send_rate_limit="0.01:1")  # one message, then 100 s
    context = send.SendContext.create(settings, redis, status_callback=False)
    url = settings.database_url
    first, second = put(url, make_participant()), put(url, make_participant())
    try:
        counts = send.deliver(context, [first, second])
    finally:
        context.close()
    assert counts["sent"] == 1 and counts["throttled"] == 1
    waiting = next(m for m in rows(url) if m.status == "pending")
    assert waiting.attempts == 0 and waiting.due_at is not None
    assert waiting.due_at > utcnow() + timedelta(seconds=60)
    assert waiting.last_error == "waiting for the sender's rate limit"


def test_the_sweep_finds_what_redis_lost(ob_settings: Settings, ctx: send.SendContext,
                                        emu: Emu, make_participant: Maker,
                                        redis: Redis) -> None:
    url = ob_settings.database_url
    people = [make_participant() for _ in range(5)]
    with session_scope(url) as db:
        outbox.dispatch_after_commit(db, redis)
        for p in people:
            outbox.enqueue(db, participant=p, body="Hi", kind="nudge")
    assert sweep_outbox(ob_settings, redis) == 0  # every row has its job
    redis.flushdb()
    assert sweep_outbox(ob_settings, redis) == 5
    assert sweep_outbox(ob_settings, redis) == 0
    for job in Queue(outbox.QUEUE, connection=redis).jobs:
        send.deliver(ctx, job.args[0])
    assert {m.status for m in rows(url)} == {"queued"}
    assert len(emu.messages()) == 5


def test_sweep_resends_rows_whose_worker_died(ob_settings: Settings, ctx: send.SendContext,
                                             emu: Emu, make_participant: Maker,
                                             redis: Redis) -> None:
    url = ob_settings.database_url
    long_ago = utcnow() - timedelta(seconds=ob_settings.outbox_lease_seconds + 5)
    mid = put(url, make_participant(), due_at=long_ago)
    with session_scope(url) as db:
        assert send.claim(ctx, db, [mid], long_ago, send.Counts())
    assert sweep_outbox(ob_settings, redis) == 1
    (job,) = Queue(outbox.QUEUE, connection=redis).jobs
    assert send.deliver(ctx, job.args[0])["sent"] == 1
    assert row(url, mid).possible_duplicate


def test_messages_for_staff_are_sent_to_their_number(ob_settings: Settings,
                                                    ctx: send.SendContext, emu: Emu) -> None:
    with session_scope(ob_settings.database_url) as db:
        mid = outbox.enqueue(db, participant=None, to="+16175559876", body="Escalation E7K2Q",
                             kind="alert", urgent=True).id
    assert send.deliver(ctx, [mid])["sent"] == 1
    assert [(m["to"], m["body"]) for m in emu.messages()] == [("+16175559876",
                                                               "Escalation E7K2Q")]


def test_no_numbers_in_stored_errors_or_logs(ob_settings: Settings, ctx: send.SendContext,
                                            emu: Emu, make_participant: Maker,
                                            caplog: pytest.LogCaptureFixture) -> None:
    p = make_participant()
    mid = put(ob_settings.database_url, p, "Your results are ready")
    emu.control.add_rule(21211, to=p.phone)
    send.quiet_http_logs()
    with caplog.at_level("DEBUG"):
        send.deliver(ctx, [mid])
    for record in caplog.records:
        text = record.getMessage() + json.dumps(getattr(record, "fields", {}), default=str)
        assert p.phone[2:] not in text and "Your results" not in text, record.name
    msgs = [m for m in rows(ob_settings.database_url) if isinstance(m, Message)]
    assert all(p.phone[2:] not in (m.last_error or "") for m in msgs)


def test_late_nudges_wait_for_the_end_of_quiet_hours(ob_settings: Settings,
                                                     ctx: send.SendContext, emu: Emu,
                                                     make_participant: Maker,
                                                     redis: Redis) -> None:
    """A retry or a backlog reaching 23:00 local waits until 08:00; safety messages do not."""
    url = ob_settings.database_url
    p = make_participant(timezone=daytime_zone(23))
    nudge, safety = put(url, p, "Daily check-in"), put(url, p, "Call 911", kind="safety")
    counts = send.deliver(ctx, [nudge, safety])
    assert counts["held"] == 1 and counts["sent"] == 1
    assert [m["body"] for m in emu.messages()] == ["Call 911"]
    held = row(url, nudge)
    assert (held.status, held.attempts, held.last_error) == ("pending", 0,
                                                             "held for quiet hours")
    local = held.due_at.astimezone(ZoneInfo(p.timezone)) if held.due_at else None
    assert local is not None and (local.hour, local.minute) == (8, 0)
    assert Queue(outbox.QUEUE, connection=redis).scheduled_job_registry.get_job_ids()
    assert send.deliver(ctx, [nudge], now=held.due_at)["sent"] == 1
