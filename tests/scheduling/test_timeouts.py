"""Re-prompts and give-ups: the shell turns WaitStarted into nudges, and a nudge for a
question that was answered does nothing."""

from __future__ import annotations

import uuid

from bot import conversation
from bot.store.db import session_scope
from bot.store.models import Participant
from bot.twilio_io import Inbound

from .conftest import la, nudge_rows, outbound, params, sessions

PHONE = "+15555550123"


def _reply(clock, body, now):
    inbound = Inbound(sid="SM" + uuid.uuid4().hex, phone=PHONE, channel="sms",
                      to="+15005550006", body=body, opt_out_type=None, num_media=0)
    with session_scope(clock.url) as db:
        return conversation.handle_inbound(db, inbound, settings=clock.settings,
                                           registry=clock.registry, now=now)


def _start_checkin(clock, pid, now):
    with session_scope(clock.url) as db:
        conversation.start_flow(db, db.get(Participant, pid), "daily_checkin", now,
                                settings=clock.settings, registry=clock.registry)


def test_a_question_gets_a_reprompt_and_a_give_up_nudge(clock, pid):
    _start_checkin(clock, pid, la(2026, 7, 1, 9, 0))
    (session,) = sessions(clock.url, pid)
    rows = nudge_rows(clock.url, kind="timeout")
    assert [(n.due_at, params(n)["due"]) for n in rows] == [
        (la(2026, 7, 1, 11, 0), "reprompt"), (la(2026, 7, 1, 17, 0), "give_up")]
    assert {n.wait_id for n in rows} == {session.wait_id}
    assert {n.session_id for n in rows} == {session.id}
    assert rows[0].dedupe_key.startswith(f"wait:{session.wait_id}:")


def test_a_reprompt_asks_again_once(clock, pid):
    _start_checkin(clock, pid, la(2026, 7, 1, 9, 0))
    (reprompt, _give_up) = nudge_rows(clock.url, kind="timeout")
    fired = clock.fire(reprompt.id, la(2026, 7, 1, 11, 0))
    assert fired.outcome == "done"
    again = [m for m in outbound(clock.url, pid) if "not heard from you" in m.body]
    assert len(again) == 1 and again[0].due_at == la(2026, 7, 1, 11, 0)
    assert again[0].purpose == "reprompt"  # which WhatsApp template, outside the window
    # Firing it twice (a duplicate job) does nothing more.
    assert clock.fire(reprompt.id, la(2026, 7, 1, 11, 1)).outcome == "not_pending"
    assert len([m for m in outbound(clock.url, pid) if "not heard from you" in m.body]) == 1


def test_a_reprompt_for_an_answered_question_is_a_no_op(clock, pid):
    _start_checkin(clock, pid, la(2026, 7, 1, 9, 0))
    (reprompt, give_up) = nudge_rows(clock.url, kind="timeout")
    outcome = _reply(clock, "7", la(2026, 7, 1, 9, 5))
    assert outcome.result == "replied"
    before = len(outbound(clock.url, pid))
    # Answering left the wait: its nudges are stale at once, the next question has its own.
    assert {n.id: n.status for n in nudge_rows(clock.url, kind="timeout")
            if n.id in (reprompt.id, give_up.id)} == {reprompt.id: "stale", give_up.id: "stale"}
    meds = [n for n in nudge_rows(clock.url, kind="timeout", status="pending")]
    assert len(meds) == 2 and meds[0].due_at == la(2026, 7, 1, 11, 5)

    # Even if the old nudge were still pending (a job already in flight), it does nothing.
    with session_scope(clock.url) as db:
        db.connection().exec_driver_sql(
            f"UPDATE nudge SET status = 'pending' WHERE id = {reprompt.id}")
    fired = clock.fire(reprompt.id, la(2026, 7, 1, 11, 0))
    assert fired.outcome == "stale" and fired.messages == []
    assert len(outbound(clock.url, pid)) == before
    (session,) = sessions(clock.url, pid)
    assert session.status == "waiting"


def test_a_give_up_ends_the_question(clock, pid):
    _start_checkin(clock, pid, la(2026, 7, 1, 9, 0))
    clock.fire_due(la(2026, 7, 1, 11, 0))
    clock.fire_due(la(2026, 7, 1, 17, 0))
    (session,) = sessions(clock.url, pid)
    assert session.status == "completed"
    assert [n.status for n in nudge_rows(clock.url, kind="timeout")] == ["done", "done"]
    assert nudge_rows(clock.url, status="pending") == []


def test_a_follow_up_step_becomes_a_follow_up_nudge(clock, pid):
    _start_checkin(clock, pid, la(2026, 7, 1, 9, 0))
    _reply(clock, "8", la(2026, 7, 1, 9, 1))
    _reply(clock, "no", la(2026, 7, 1, 9, 2))
    _reply(clock, "2", la(2026, 7, 1, 9, 3))  # side effects: the questionnaire in an hour
    (follow_up,) = nudge_rows(clock.url, kind="follow_up")
    assert follow_up.flow_id == "symptom_questionnaire"
    assert follow_up.due_at == la(2026, 7, 1, 10, 3)
    (checkin,) = sessions(clock.url, pid)
    assert follow_up.session_id == checkin.id
    _reply(clock, "no", la(2026, 7, 1, 9, 4))  # no new symptoms: the check-in ends
    assert [f.outcome for f in clock.fire_due(la(2026, 7, 1, 10, 3))] == ["done"]
    assert [s.flow_id for s in sessions(clock.url, pid)] == ["daily_checkin",
                                                             "symptom_questionnaire"]
