"""Daily check-ins: participant-local times across DST, planning that is idempotent and
follows changes, and one conversation at a time."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot import consent, conversation, nudges, participants
from bot.store.db import session_scope
from bot.store.models import ConversationSession, Participant
from bot.twilio_io import Inbound

from .conftest import LA, la, nudge_rows, outbound, params, sessions, utc

# 2026: clocks go forward on Sunday 8 March, back on Sunday 1 November (America/*).
SPRING = (la(2026, 3, 1, 0, 0), la(2026, 3, 15, 0, 0))
FALL = (la(2026, 10, 25, 0, 0), la(2026, 11, 8, 0, 0))


@pytest.mark.parametrize("period", [SPRING, FALL], ids=["spring_forward", "fall_back"])
def test_a_0830_checkin_fires_once_a_day_at_0830_local_across_dst(clock, pid, period):
    start, end = period
    clock.run(start, end)

    checkins = [s for s in sessions(clock.url, pid) if s.flow_id == "daily_checkin"]
    local = [s.created_at.astimezone(LA) for s in checkins]
    days = [t.date() for t in local]
    assert len(days) == 14 and len(set(days)) == 14, days
    assert days[0] == start.astimezone(LA).date()
    assert all((t.hour, t.minute) == (8, 30) for t in local), local
    # The UTC time moved by an hour on the day of the change, the local time did not.
    offsets = Counter(t.utcoffset() for t in local)
    assert len(offsets) == 2

    # Each check-in's first question went out at 08:30 local, re-prompted at 10:30.
    sent = [m for m in outbound(clock.url, pid) if m.step == "wellbeing"]
    first = [m.due_at.astimezone(LA) for m in sent if "How do you feel today" in m.body]
    again = [m.due_at.astimezone(LA) for m in sent if "not heard from you" in m.body]
    assert [(t.hour, t.minute) for t in first] == [(8, 30)] * 14
    assert [(t.hour, t.minute) for t in again] == [(10, 30)] * 14
    # Every check-in nudge fired once, and nothing is left stuck.
    done = nudge_rows(clock.url, kind="checkin", status="done")
    assert len(done) == 14
    assert Counter(n.dedupe_key for n in done).most_common(1)[0][1] == 1


def test_planning_is_idempotent_and_plans_a_day_and_a_half_ahead(clock, pid):
    now = la(2026, 3, 7, 6, 0)  # the window runs to 18:00 tomorrow
    first = clock.plan(now)
    again = clock.plan(now)
    assert (first.added, again.added, again.moved, again.revived) == (2, 0, 0, 0)
    rows = nudge_rows(clock.url, kind="checkin")
    assert [n.dedupe_key for n in rows] == [f"checkin:{pid}:2026-03-07",
                                            f"checkin:{pid}:2026-03-08"]
    # 08:30 PST, then 08:30 PDT on the day the clocks go forward.
    assert rows[0].due_at == utc(2026, 3, 7, 16, 30)
    assert rows[1].due_at == utc(2026, 3, 8, 15, 30)
    assert all(n.flow_id == "daily_checkin" for n in rows)


def test_the_study_default_time_applies_when_the_participant_chose_none(clock):
    from .conftest import enrol

    pid = enrol(clock.url, code="P-002", phone="+15555550124", checkin_time=None,
                timezone="Africa/Nairobi")
    clock.study = nudges.StudySchedule(checkin_time="09:15")
    clock.plan(utc(2026, 5, 1, 0, 0))
    rows = nudge_rows(clock.url, participant_id=pid)
    assert [n.due_at for n in rows] == [utc(2026, 5, 1, 6, 15), utc(2026, 5, 2, 6, 15)]


def test_a_new_checkin_time_moves_the_planned_checkins(clock, pid):
    clock.plan(la(2026, 6, 1, 6, 0))
    with session_scope(clock.url) as db:
        p = db.get(Participant, pid)
        participants.update(db, p, actor="participant:P-001", checkin_time="18:30")
    counts = clock.plan(la(2026, 6, 1, 7, 0))
    assert counts.moved == 2
    rows = nudge_rows(clock.url, kind="checkin")
    assert [n.due_at.astimezone(LA).strftime("%d %H:%M") for n in rows] == \
        ["01 18:30", "02 18:30"]


def test_quiet_hours_move_a_checkin_planned_inside_them(clock, pid):
    clock.study = nudges.StudySchedule(quiet=nudges.QuietHours("20:00", "09:00"))
    clock.plan(la(2026, 6, 1, 6, 0))
    rows = nudge_rows(clock.url, kind="checkin")
    assert rows[0].due_at == la(2026, 6, 1, 9, 0)


def test_participants_who_opted_out_or_were_erased_get_no_checkins(clock, pid):
    from .conftest import enrol

    other = enrol(clock.url, code="P-002", phone="+15555550124")
    with session_scope(clock.url) as db:
        consent.opt_out(db, db.get(Participant, other), source="staff", actor_name="staff:t",
                        now=utc(2026, 6, 1))
    clock.plan(la(2026, 6, 1, 6, 0))
    assert {n.participant_id for n in nudge_rows(clock.url)} == {pid}


def test_a_bad_time_zone_skips_that_participant_only(clock, pid):
    from .conftest import enrol

    bad = enrol(clock.url, code="P-002", phone="+15555550124", timezone="Mars/Olympus")
    counts = clock.plan(la(2026, 6, 1, 6, 0))
    assert counts.errors == 1
    assert {n.participant_id for n in nudge_rows(clock.url)} == {pid}
    assert bad


# ---- a check-in during an open conversation ----------------------------------------------


def _start(clock, pid, flow_id, now, **params_):
    with session_scope(clock.url) as db:
        p = db.get(Participant, pid)
        conversation.start_flow(db, p, flow_id, now, params_, settings=clock.settings,
                                registry=clock.registry)


def test_yesterdays_unanswered_checkin_gives_way_to_todays(clock, pid):
    clock.study = nudges.StudySchedule()
    # Yesterday's check-in with no give-up (an old flow version, say): still waiting.
    _start(clock, pid, "daily_checkin", la(2026, 6, 1, 8, 30))
    with session_scope(clock.url) as db:  # its timeouts are lost, so it stays open
        db.connection().exec_driver_sql("UPDATE nudge SET status = 'cancelled'")
    clock.plan(la(2026, 6, 2, 6, 0))
    clock.fire_due(la(2026, 6, 2, 8, 30))
    rows = sessions(clock.url, pid)
    assert [(s.flow_id, s.status) for s in rows] == [("daily_checkin", "interrupted"),
                                                    ("daily_checkin", "waiting")]


def test_a_checkin_waits_while_the_participant_is_in_another_conversation(clock, pid):
    # 08:10: a visit reminder the participant is answering when the check-in comes due.
    _start(clock, pid, "visit_reminder", la(2026, 6, 2, 8, 10),
           visit_at="2026-06-05T16:00:00+00:00")
    clock.plan(la(2026, 6, 2, 6, 0))
    fired = clock.fire_due(la(2026, 6, 2, 8, 30))
    assert [f.outcome for f in fired] == ["postponed"]
    (checkin,) = [n for n in nudge_rows(clock.url, kind="checkin") if "06-02" in n.dedupe_key]
    assert checkin.due_at == la(2026, 6, 2, 9, 0)
    assert params(checkin)["_first_due"] == la(2026, 6, 2, 8, 30).isoformat()

    # 08:45 the reminder conversation ends; at 09:00 the check-in starts.
    inbound = Inbound(sid="SM" + "1" * 32, phone="+15555550123", channel="sms",
                      to="+15005550006", body="yes", opt_out_type=None, num_media=0)
    with session_scope(clock.url) as db:
        conversation.handle_inbound(db, inbound, settings=clock.settings,
                                    registry=clock.registry, now=la(2026, 6, 2, 8, 45))
    fired = clock.fire_due(la(2026, 6, 2, 9, 0))
    assert [f.outcome for f in fired] == ["done"]
    assert sessions(clock.url, pid)[-1].flow_id == "daily_checkin"


def _touch_open_sessions(url, now):
    """The participant is still busy in their open conversation at `now`."""
    with session_scope(url) as db:
        db.connection().execute(
            sa.update(ConversationSession).where(ConversationSession.status == "waiting")
            .values(updated_at=now))


def test_a_checkin_held_back_too_long_is_skipped_for_the_day(clock, pid):
    _start(clock, pid, "visit_reminder", la(2026, 6, 2, 8, 10),
           visit_at="2026-06-05T16:00:00+00:00")
    clock.plan(la(2026, 6, 2, 6, 0))
    t = la(2026, 6, 2, 8, 30)
    while t <= la(2026, 6, 2, 13, 0):
        _touch_open_sessions(clock.url, t)
        clock.fire_due(t)
        t += timedelta(minutes=30)
    outcomes = [outcome for _t, _id, kind, outcome in clock.fired if kind == "checkin"]
    # Tried again every 30 minutes up to 4 hours after 08:30, then given up for today.
    assert outcomes == ["postponed"] * 8 + ["skipped"]
    (checkin,) = [n for n in nudge_rows(clock.url, kind="checkin") if "06-02" in n.dedupe_key]
    assert checkin.status == "skipped"
    assert [s.flow_id for s in sessions(clock.url, pid)] == ["visit_reminder"]


def test_an_abandoned_conversation_does_not_hold_the_checkin_back(clock, pid):
    _start(clock, pid, "onboarding", la(2026, 5, 28, 10, 0))
    with session_scope(clock.url) as db:
        db.connection().exec_driver_sql("UPDATE nudge SET status = 'cancelled'")
    clock.plan(la(2026, 6, 2, 6, 0))
    fired = clock.fire_due(la(2026, 6, 2, 8, 30))
    assert [f.outcome for f in fired] == ["done"]
    assert [(s.flow_id, s.status) for s in sessions(clock.url, pid)] == [
        ("onboarding", "interrupted"), ("daily_checkin", "waiting")]
