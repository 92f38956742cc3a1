"""Failures Twilio reports later, through status callbacks to the real webhook."""

from __future__ import annotations

import json
from datetime import timedelta

from redis import Redis
from sqlmodel import select

from bot import delivery, outbox
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.models import AuditEntry, Message, StatusCallback
from bot.store.types import utcnow
from workers import send
from workers.sweep import sweep_outbox

from .conftest import Emu, Maker, row, rows, wait_until


def put(url: str, p, body: str = "Did you take your pill?") -> int:  # type: ignore[no-untyped-def]
    with session_scope(url) as db:
        return int(outbox.enqueue(db, participant=p, body=body, kind="nudge").id)


def test_delivered_is_recorded(cb_settings: Settings, cb_ctx: send.SendContext, emu: Emu,
                               make_participant: Maker) -> None:
    url = cb_settings.database_url
    mid = put(url, make_participant())
    send.deliver(cb_ctx, [mid])
    assert wait_until(lambda: row(url, mid).status == "delivered")


def test_unreachable_handset_is_retried_with_backoff(cb_settings: Settings,
                                                     cb_ctx: send.SendContext, emu: Emu,
                                                     make_participant: Maker,
                                                     redis: Redis) -> None:
    url = cb_settings.database_url
    p = make_participant()
    emu.control.add_rule(30003, to=p.phone, times=1)
    mid = put(url, p)
    sent_at = utcnow()
    send.deliver(cb_ctx, [mid])
    assert wait_until(lambda: len(rows(url)) == 2)
    first, retry = rows(url)
    assert (first.status, first.error_code) == ("undelivered", 30003)
    assert first.last_error == f"30003: handset unreachable; retried as #{retry.id}"
    assert retry.status == "pending" and retry.attempts == 1 and retry.body == first.body
    base = delivery.BACKOFF_BASE[delivery.Action.SLOW_RETRY]
    assert retry.due_at is not None
    assert sent_at + timedelta(seconds=base / 2 - 1) < retry.due_at
    assert retry.due_at < utcnow() + timedelta(seconds=base + 1)
    assert sweep_outbox(cb_settings, redis) == 0  # not due yet
    later = retry.due_at + timedelta(seconds=1)
    assert sweep_outbox(cb_settings, redis, later) == 1
    assert send.deliver(cb_ctx, [retry.id], now=later)["sent"] == 1
    assert wait_until(lambda: row(url, retry.id).status == "delivered")
    assert row(url, retry.id).attempts == 2
    assert [m["status"] for m in emu.messages()] == ["undelivered", "delivered"]


def test_unreachable_for_good_gives_up_after_max_attempts(cb_settings: Settings,
                                                          cb_ctx: send.SendContext, emu: Emu,
                                                          make_participant: Maker) -> None:
    url = cb_settings.database_url
    p = make_participant()
    emu.control.add_rule(30003, to=p.phone)
    mid = put(url, p)
    now = utcnow()
    for attempt in range(1, delivery.MAX_ATTEMPTS + 1):
        send.deliver(cb_ctx, [mid], now=now)
        assert wait_until(lambda: row(url, mid).status == "undelivered")  # noqa: B023
        if attempt < delivery.MAX_ATTEMPTS:
            assert wait_until(lambda: len(rows(url)) == attempt + 1)  # noqa: B023
            mid = rows(url)[-1].id
            now += delivery.MAX_BACKOFF + timedelta(seconds=1)
    assert wait_until(lambda: "gave up" in (row(url, mid).last_error or ""))
    assert len(rows(url)) == delivery.MAX_ATTEMPTS
    assert len(emu.messages()) == delivery.MAX_ATTEMPTS
    with session_scope(url) as db:
        assert db.exec(select(AuditEntry).where(AuditEntry.action == "outbox.failed",
                                                AuditEntry.entity_id == str(mid))).one()


def test_landline_is_final(cb_settings: Settings, cb_ctx: send.SendContext, emu: Emu,
                           make_participant: Maker) -> None:
    url = cb_settings.database_url
    p = make_participant()
    emu.control.add_rule(30006, to=p.phone)
    mid = put(url, p)
    send.deliver(cb_ctx, [mid])
    assert wait_until(lambda: row(url, mid).last_error is not None)
    msg = row(url, mid)
    assert (msg.status, msg.error_code) == ("undelivered", 30006)
    assert msg.last_error == "30006: landline or unreachable carrier"
    assert len(rows(url)) == 1
    with session_scope(url) as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "outbox.failed")).one()
    assert json.loads(entry.new_json or "{}")["error_code"] == 30006


def test_opted_out_reported_by_callback_cancels_the_rest(cb_settings: Settings,
                                                         cb_ctx: send.SendContext,
                                                         make_participant: Maker) -> None:
    from bot.conversation import handle_status
    from bot.twilio_io import StatusUpdate

    url = cb_settings.database_url
    p = make_participant()
    mid, waiting = put(url, p), put(url, p, "Later")
    with session_scope(url) as db:
        msg = db.get(Message, mid)
        assert msg is not None
        msg.twilio_sid, msg.status = "SM" + "7" * 32, "sent"
    with session_scope(url) as db:
        handle_status(db, StatusUpdate("SM" + "7" * 32, "failed", 21610), now=utcnow())
    assert row(url, mid).status == "failed"
    assert row(url, waiting).status == "cancelled"
    assert len(rows(url)) == 2  # no retry


def test_a_callback_faster_than_our_commit_is_applied(cb_settings: Settings,
                                                      cb_ctx: send.SendContext,
                                                      make_participant: Maker) -> None:
    """The webhook answered "unknown SID" (the row had no SID yet); recording catches up."""
    url = cb_settings.database_url
    mid = put(url, make_participant())
    sid = "SM" + "5" * 32
    with session_scope(url) as db:
        db.add(StatusCallback(twilio_sid=sid, status="sent"))
        msg = db.get(Message, mid)
        assert msg is not None
        msg.twilio_sid, msg.status = sid, "queued"
    with session_scope(url) as db:
        assert outbox.apply_early_callbacks(db, [sid], now=utcnow()) == 1
    assert row(url, mid).status == "sent"
