"""Status callbacks: forward only, deduplicated, and the two errors that change a participant."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
import sqlalchemy as sa

from bot import conversation
from bot.config import Settings
from bot.store.db import session_scope
from bot.store.models import AuditEntry, ConsentChange, Message, Participant, StatusCallback
from bot.store.types import utcnow
from bot.twilio_io import StatusUpdate

from .conftest import Twilio, new_sid, participant, rows


def sent_message(url: str, p: Participant, status: str = "sent", channel: str = "sms") -> str:
    sid = new_sid()
    with session_scope(url) as db:
        db.add(Message(participant_id=p.id, direction="out", channel=channel, address=p.phone,
                       twilio_sid=sid, body="How do you feel today?", kind="nudge",
                       status=status))
    return sid


def pending_message(url: str, p: Participant) -> int:
    with session_scope(url) as db:
        msg = Message(participant_id=p.id, direction="out", address=p.phone, body="Reminder",
                      kind="nudge", status="pending", due_at=utcnow())
        db.add(msg)
        db.flush()
        assert msg.id is not None
        return msg.id


def status_of(url: str, sid: str) -> Message:
    return rows(url, Message, Message.twilio_sid == sid)[0]


def test_status_moves_forward(twilio: Twilio, app_settings: Settings,
                              enrolled: Participant) -> None:
    url = app_settings.database_url
    sid = sent_message(url, enrolled, status="queued")
    for status in ("sending", "sent", "delivered"):
        assert twilio.status(sid, status).status_code == 204
        assert status_of(url, sid).status == status


def test_out_of_order_callbacks_never_move_back(twilio: Twilio, app_settings: Settings,
                                                enrolled: Participant) -> None:
    url = app_settings.database_url
    sid = sent_message(url, enrolled, status="queued")
    twilio.status(sid, "delivered")
    twilio.status(sid, "sent")
    twilio.status(sid, "sending")
    msg = status_of(url, sid)
    assert msg.status == "delivered"
    assert isinstance(msg.sent_at, datetime)
    # Every callback is kept, even those that did not move the message.
    assert len(rows(url, StatusCallback, StatusCallback.twilio_sid == sid)) == 3


def test_first_final_outcome_stands_but_read_beats_it(twilio: Twilio, app_settings: Settings,
                                                       enrolled: Participant) -> None:
    url = app_settings.database_url
    sid = sent_message(url, enrolled)
    twilio.status(sid, "delivered")
    twilio.status(sid, "failed", error_code=30008)
    assert status_of(url, sid).status == "delivered"
    assert status_of(url, sid).error_code is None
    twilio.status(sid, "read")
    assert status_of(url, sid).status == "read"


def test_failure_records_the_error_code(twilio: Twilio, app_settings: Settings,
                                        enrolled: Participant) -> None:
    url = app_settings.database_url
    sid = sent_message(url, enrolled)
    twilio.status(sid, "undelivered", error_code=30003)
    msg = status_of(url, sid)
    assert (msg.status, msg.error_code) == ("undelivered", 30003)


def test_duplicate_callback_is_harmless(twilio: Twilio, app_settings: Settings,
                                        enrolled: Participant) -> None:
    url = app_settings.database_url
    sid = sent_message(url, enrolled)
    for _ in range(3):
        assert twilio.status(sid, "delivered").status_code == 204
    assert len(rows(url, StatusCallback, StatusCallback.twilio_sid == sid)) == 1
    assert status_of(url, sid).status == "delivered"


def test_unknown_sid_is_acknowledged(twilio: Twilio, app_settings: Settings,
                                     enrolled: Participant) -> None:
    response = twilio.status(new_sid(), "delivered")
    assert response.status_code == 204
    assert rows(app_settings.database_url, Message) == []


def test_error_21610_opts_the_participant_out(twilio: Twilio, app_settings: Settings,
                                              enrolled: Participant) -> None:
    url = app_settings.database_url
    sid = sent_message(url, enrolled)
    pending = pending_message(url, enrolled)
    twilio.status(sid, "failed", error_code=21610)
    p = participant(url)
    assert p.consent == "opted_out"
    changes = rows(url, ConsentChange, ConsentChange.participant_id == p.id,
                   ConsentChange.state == "opted_out")
    assert [c.source for c in changes] == ["error_21610"]
    assert rows(url, Message, Message.id == pending)[0].status == "cancelled"
    audit = rows(url, AuditEntry, AuditEntry.action == "consent.opted_out")
    assert [a.actor for a in audit] == ["system:twilio"]


def test_error_63016_closes_the_whatsapp_window(twilio: Twilio, app_settings: Settings,
                                                enrolled: Participant) -> None:
    url = app_settings.database_url
    sid = sent_message(url, enrolled, channel="whatsapp")
    twilio.status(sid, "failed", error_code=63016)
    assert participant(url).whatsapp_window_closed is True
    assert participant(url).consent == "opted_in"


def test_a_callback_that_changes_the_participant_locks_them_before_the_message(
        app_settings: Settings, enrolled: Participant) -> None:
    """The webhook locks a participant, then their messages; a 63016 callback must take the
    same order, or the two can deadlock. While the participant is held, the callback waits
    without holding its message."""
    url = app_settings.database_url
    if not url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: no row locks to order")
    sid = sent_message(url, enrolled, status="sent", channel="whatsapp")
    update = StatusUpdate(sid=sid, status="undelivered", error_code=63016)
    with session_scope(url) as holder:
        holder.exec(sa.select(Participant).where(Participant.id == enrolled.id)
                    .with_for_update())  # type: ignore[call-overload]
        done = threading.Event()

        def callback() -> None:
            with session_scope(url) as db:
                conversation.handle_status(db, update, now=utcnow())
            done.set()

        thread = threading.Thread(target=callback)
        thread.start()
        assert not done.wait(0.5)  # waiting for the participant...
        # ...without holding the message: the webhook's next lock would be granted.
        holder.exec(sa.text("SELECT id FROM message WHERE twilio_sid = :sid FOR UPDATE NOWAIT")
                    .bindparams(sid=sid))  # type: ignore[call-overload]
    thread.join(10)
    assert done.is_set()
    assert participant(url).whatsapp_window_closed
