"""The outbox API: rows first, jobs after the commit, ids only in Redis, consent at the door."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from sqlmodel import select

from bot import consent, outbox
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.models import AuditEntry, Message
from bot.store.types import utcnow

from .conftest import Maker, job_payloads, reload, row, rows


def queued_ids(redis: Redis) -> list[int]:
    return sorted(i for job in Queue(outbox.QUEUE, connection=redis).jobs for i in job.args[0])


def test_enqueue_stores_a_pending_row_in_the_callers_transaction(
        ob_settings: Settings, make_participant: Maker) -> None:
    p = make_participant(language="es", channel="whatsapp")
    text = "¿Cómo se siente hoy? Responda del 0 al 10."
    with session_scope(ob_settings.database_url) as db:
        msg = outbox.enqueue(db, participant=p, body=text, kind="nudge", purpose="checkin",
                             session_id="s1", step="mood")
    stored = row(ob_settings.database_url, msg.id)
    assert (stored.direction, stored.status, stored.channel, stored.language) == (
        "out", "pending", "whatsapp", "es")
    assert stored.address == p.phone and stored.participant_id == p.id
    assert stored.segments == 1 and stored.purpose == "checkin" and stored.attempts == 0
    assert stored.due_at is not None and stored.twilio_sid is None


def test_rollback_leaves_nothing(ob_settings: Settings, make_participant: Maker,
                                 redis: Redis) -> None:
    p = make_participant()
    with pytest.raises(RuntimeError), session_scope(ob_settings.database_url) as db:
        outbox.dispatch_after_commit(db, redis)
        outbox.enqueue(db, participant=p, body="Hi", kind="nudge")
        raise RuntimeError("the caller fails after enqueueing")
    assert rows(ob_settings.database_url) == []
    assert queued_ids(redis) == []
    assert list(redis.scan_iter(match=outbox.MARK_PREFIX + "*")) == []


def test_the_job_is_enqueued_only_after_the_commit(ob_settings: Settings,
                                                  make_participant: Maker, redis: Redis) -> None:
    p = make_participant()
    with session_scope(ob_settings.database_url) as db:
        outbox.dispatch_after_commit(db, redis)
        first = outbox.enqueue(db, participant=p, body="One", kind="nudge")
        second = outbox.enqueue(db, participant=p, body="Two", kind="nudge")
        db.flush()
        assert queued_ids(redis) == []  # flushed is not committed: no job yet
    assert queued_ids(redis) == [first.id, second.id]


def test_rows_flushed_by_other_code_are_dispatched_too(ob_settings: Settings,
                                                      make_participant: Maker,
                                                      redis: Redis) -> None:
    """`conversation.start_flow` writes its outbox rows itself: registering first is enough."""
    p = make_participant()
    with session_scope(ob_settings.database_url) as db:
        outbox.dispatch_after_commit(db, redis)
        msg = Message(participant_id=p.id, direction="out", channel="sms", address=p.phone,
                      body="Made elsewhere", kind="nudge", status="pending", due_at=utcnow())
        db.add(msg)
    assert queued_ids(redis) == [msg.id]


def test_dispatch_of_committed_ids_skips_ids_with_a_job(ob_settings: Settings,
                                                       make_participant: Maker,
                                                       redis: Redis) -> None:
    p = make_participant()
    with session_scope(ob_settings.database_url) as db:
        ids = [outbox.enqueue(db, participant=p, body=f"m{i}", kind="nudge").id
               for i in range(3)]
    assert outbox.dispatch_after_commit(ids, redis, batch_size=2) == 3
    assert outbox.dispatch(redis, ids) == 0  # marked: a job is waiting for each
    jobs = Queue(outbox.QUEUE, connection=redis).jobs
    assert [job.args[0] for job in jobs] == [ids[:2], ids[2:]]


def test_a_later_due_time_schedules_the_job(ob_settings: Settings, make_participant: Maker,
                                           redis: Redis) -> None:
    p = make_participant()
    due = utcnow() + timedelta(hours=2)
    with session_scope(ob_settings.database_url) as db:
        outbox.dispatch_after_commit(db, redis)
        msg = outbox.enqueue(db, participant=p, body="Later", kind="nudge", due_at=due)
    queue = Queue(outbox.QUEUE, connection=redis)
    assert queue.jobs == []
    scheduled = queue.scheduled_job_registry.get_job_ids()
    assert len(scheduled) == 1
    ttl = redis.ttl(outbox.MARK_PREFIX + str(msg.id))
    assert 2 * 3600 < ttl <= 2 * 3600 + outbox.MARK_GRACE_S + 2


def test_jobs_carry_ids_only(ob_settings: Settings, make_participant: Maker,
                             redis: Redis) -> None:
    p = make_participant(language="fr")
    body = "Bonjour Ana, votre glycémie"
    with session_scope(ob_settings.database_url) as db:
        outbox.dispatch_after_commit(db, redis)
        outbox.enqueue(db, participant=p, body=body, kind="nudge")
        outbox.enqueue(db, participant=None, to="+16175559876", body="ACK E7K2Q", kind="alert")
    payloads = job_payloads(redis)
    assert payloads
    for job in payloads:
        assert job["func"] == outbox.SEND_JOB
        assert job["kwargs"] == {}
        assert all(type(i) is int for i in job["args"][0])
        everything = b" ".join(v for v in job["raw"].values())
        for secret in (body.encode(), p.phone.encode(), p.phone[2:].encode(), b"6175559876",
                       b"ACK E7K2Q"):
            assert secret not in everything


def test_opted_out_participant_gets_a_suppressed_row_and_no_job(
        ob_settings: Settings, make_participant: Maker, redis: Redis) -> None:
    p = make_participant(consent="opted_out")
    with session_scope(ob_settings.database_url) as db:
        outbox.dispatch_after_commit(db, redis)
        msg = outbox.enqueue(db, participant=p, body="Check-in", kind="nudge")
    assert row(ob_settings.database_url, msg.id).status == "suppressed"
    assert queued_ids(redis) == []
    with session_scope(ob_settings.database_url) as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "outbox.suppressed")).one()
    assert entry.entity_id == str(msg.id) and "Check-in" not in (entry.new_json or "")


def test_override_consent_is_for_urgent_messages_only(ob_settings: Settings,
                                                     make_participant: Maker,
                                                     redis: Redis) -> None:
    p = make_participant(consent="opted_out")
    with session_scope(ob_settings.database_url) as db:
        with pytest.raises(ValueError, match="urgent"):
            outbox.enqueue(db, participant=p, body="x", kind="nudge", override_consent=True)
        outbox.dispatch_after_commit(db, redis)
        msg = outbox.enqueue(db, participant=p, body="Call 911", kind="safety", urgent=True,
                             override_consent=True)
    assert row(ob_settings.database_url, msg.id).status == "pending"
    assert queued_ids(redis) == [msg.id]
    with session_scope(ob_settings.database_url) as db:
        assert db.exec(select(AuditEntry)
                       .where(AuditEntry.action == "outbox.consent_override")).one()


def test_messages_for_staff_name_their_number(ob_settings: Settings) -> None:
    with session_scope(ob_settings.database_url) as db:
        sms = outbox.enqueue(db, participant=None, to="+16175559876", body="Alert", kind="alert",
                             urgent=True)
        wa = outbox.enqueue(db, participant=None, to="whatsapp:+16175559877", body="Alert",
                            kind="alert")
        with pytest.raises(ValueError):
            outbox.enqueue(db, participant=None, body="to nobody", kind="alert")
    assert (row(ob_settings.database_url, sms.id).channel, row(ob_settings.database_url,
                                                               sms.id).address) == (
        "sms", "+16175559876")
    assert (row(ob_settings.database_url, wa.id).channel, row(ob_settings.database_url,
                                                              wa.id).address) == (
        "whatsapp", "+16175559877")


def test_cancel_pending_stops_only_what_has_not_left(ob_settings: Settings,
                                                    make_participant: Maker) -> None:
    p, other = make_participant(), make_participant()
    url = ob_settings.database_url
    with session_scope(url) as db:
        waiting = outbox.enqueue(db, participant=p, body="a", kind="nudge")
        gone = outbox.enqueue(db, participant=p, body="b", kind="nudge")
        gone.twilio_sid, gone.status = "SM" + "0" * 32, "queued"
        theirs = outbox.enqueue(db, participant=other, body="c", kind="nudge")
    with session_scope(url) as db:
        assert outbox.cancel_pending(db, p.id, "erased") == 1
    assert row(url, waiting.id).status == "cancelled"
    assert row(url, waiting.id).last_error == "erased"
    assert row(url, gone.id).status == "queued"
    assert row(url, theirs.id).status == "pending"


def test_consent_opt_out_cancels_the_outbox(ob_settings: Settings,
                                           make_participant: Maker) -> None:
    p = make_participant()
    url = ob_settings.database_url
    with session_scope(url) as db:
        msg = outbox.enqueue(db, participant=p, body="a", kind="nudge")
    with session_scope(url) as db:
        fresh = reload(url, p)
        db.add(fresh)
        consent.opt_out(db, fresh, source="keyword", actor_name="participant:x", now=utcnow())
    assert row(url, msg.id).status == "cancelled"


def test_a_hook_covers_one_transaction(ob_settings: Settings, make_participant: Maker,
                                       redis: Redis) -> None:
    from sqlmodel import Session

    from bot.store.db import get_engine

    p = make_participant()
    with Session(get_engine(ob_settings.database_url)) as db:
        outbox.enqueue(db, participant=p, body="rolled back", kind="nudge")
        db.rollback()
        unhooked = outbox.enqueue(db, participant=p, body="no hook", kind="nudge").id
        db.commit()
        outbox.dispatch_after_commit(db, redis)
        hooked = outbox.enqueue(db, participant=p, body="hooked", kind="nudge").id
        db.commit()
        outbox.enqueue(db, participant=p, body="after", kind="nudge")
        db.commit()
    assert queued_ids(redis) == [hooked]
    assert unhooked != hooked
