"""Quiet hours: nothing non-urgent goes out between 21:00 and 08:00 local; it waits, it is
never dropped."""

from __future__ import annotations

from datetime import timedelta

from bot import nudges
from bot.store.db import session_scope
from bot.store.models import Message, Nudge

from .conftest import LA, la, nudge_rows, outbound, sessions


def _nudge(url, pid, *, kind="follow_up", flow_id="late_question", due_at, key="n1"):
    with session_scope(url) as db:
        n = Nudge(participant_id=pid, kind=kind, flow_id=flow_id, due_at=due_at, dedupe_key=key)
        db.add(n)
        db.flush()
        return n.id


def test_a_nudge_due_at_2200_goes_out_at_0800_the_next_day(clock, pid):
    nid = _nudge(clock.url, pid, due_at=la(2026, 7, 1, 22, 0))
    fired = clock.fire(nid, la(2026, 7, 1, 22, 0))
    assert fired.outcome == "postponed"
    assert fired.due_at == la(2026, 7, 2, 8, 0)
    assert outbound(clock.url, pid) == [] and sessions(clock.url, pid) == []

    # Nothing happens in the night, whoever asks.
    assert clock.fire_due(la(2026, 7, 2, 7, 59)) == []
    fired = clock.fire_due(la(2026, 7, 2, 8, 0))
    assert [f.outcome for f in fired] == ["done"]
    (msg,) = outbound(clock.url, pid)
    assert msg.due_at == la(2026, 7, 2, 8, 0)
    assert (msg.status, msg.kind, msg.purpose) == ("pending", "nudge", "follow_up")
    (n,) = nudge_rows(clock.url, kind="follow_up")
    assert n.status == "done"


def test_a_give_up_in_quiet_hours_happens_on_time_and_its_message_waits(clock, pid):
    nid = _nudge(clock.url, pid, due_at=la(2026, 7, 1, 10, 30))
    clock.fire(nid, la(2026, 7, 1, 10, 30))
    (give_up,) = nudge_rows(clock.url, kind="timeout", status="pending")
    assert give_up.due_at == la(2026, 7, 1, 22, 30)  # 12 hours later

    fired = clock.fire(give_up.id, la(2026, 7, 1, 22, 30))
    assert fired.outcome == "done"
    assert sessions(clock.url, pid)[-1].status == "completed"  # ended at 22:30 ...
    missed = [m for m in outbound(clock.url, pid) if "missed your answer" in m.body]
    assert [m.due_at.astimezone(LA).strftime("%d %H:%M") for m in missed] == ["02 08:00"]
    assert fired.messages == [(missed[0].id, la(2026, 7, 2, 8, 0))]


def test_a_reprompt_due_in_quiet_hours_waits_for_them_to_end(clock, pid):
    # The daily check-in at 20:00 re-prompts after 2 hours: 22:00, inside quiet hours.
    nid = _nudge(clock.url, pid, kind="checkin", flow_id="daily_checkin",
                 due_at=la(2026, 7, 1, 20, 0))
    clock.fire(nid, la(2026, 7, 1, 20, 0))
    reprompt = [n for n in nudge_rows(clock.url, kind="timeout", status="pending")
                if n.due_at == la(2026, 7, 1, 22, 0)]
    assert len(reprompt) == 1
    fired = clock.fire(reprompt[0].id, la(2026, 7, 1, 22, 0))
    assert (fired.outcome, fired.due_at) == ("postponed", la(2026, 7, 2, 8, 0))
    # The give-up (04:00) comes first and closes the question: the re-prompt is then moot.
    clock.fire_due(la(2026, 7, 2, 4, 0))
    clock.fire_due(la(2026, 7, 2, 8, 0))
    timeouts = nudge_rows(clock.url, kind="timeout")
    assert [(n.due_at, n.status) for n in timeouts] == [(la(2026, 7, 2, 4, 0), "done"),
                                                        (la(2026, 7, 2, 8, 0), "stale")]
    assert not [m for m in outbound(clock.url, pid) if "not heard from you" in m.body]


def test_a_checkin_that_would_start_in_quiet_hours_waits_for_them_to_end(clock, pid):
    nid = _nudge(clock.url, pid, kind="checkin", flow_id="daily_checkin",
                 due_at=la(2026, 7, 1, 7, 0))
    fired = clock.fire(nid, la(2026, 7, 1, 7, 0))
    assert (fired.outcome, fired.due_at) == ("postponed", la(2026, 7, 1, 8, 0))


def test_a_checkin_held_into_the_night_is_skipped_not_sent_next_morning(clock, pid):
    nid = _nudge(clock.url, pid, kind="checkin", flow_id="daily_checkin",
                 due_at=la(2026, 7, 1, 20, 45))
    fired = clock.fire(nid, la(2026, 7, 1, 21, 5))  # the scheduler was late
    assert fired.outcome == "skipped"  # tomorrow's check-in comes at its own time


def test_urgent_messages_are_exempt_and_others_wait(clock, pid):
    night = la(2026, 7, 1, 23, 0)
    with session_scope(clock.url) as db:
        msgs = [Message(participant_id=pid, direction="out", body=b, kind=k, status="pending",
                        due_at=night) for b, k in (("safety", "safety"), ("later", "nudge"))]
        for m in msgs:
            db.add(m)
        db.flush()
        out = nudges._to_outbox(db, msgs, "America/Los_Angeles", clock.study, night)
    assert out[0][1] == night
    assert out[1][1] == la(2026, 7, 2, 8, 0)
    assert (out[1][1] - night) == timedelta(hours=9)


def test_study_quiet_hours_come_from_study_yaml(tmp_path):
    (tmp_path / "study.yaml").write_text(
        'quiet_hours: {start: "20:00", end: "09:30"}\n'
        'checkin_time: "10:00"\n'
        'visit_reminders: ["-2d@12:00", "-3h"]\n', encoding="utf-8")
    study = nudges.load_study_schedule(tmp_path)
    assert study.quiet == nudges.QuietHours("20:00", "09:30")
    assert study.checkin_time == "10:00"
    assert [o.key for o in study.visit_reminders] == ["-2d@12:00", "-3h"]
    assert nudges.study_schedule_from({"quiet_hours": "22:00-07:00"})[0].quiet == \
        nudges.QuietHours("22:00", "07:00")


def test_bad_study_settings_keep_the_defaults_and_say_why():
    study, problems = nudges.study_schedule_from(
        {"quiet_hours": "late", "checkin_time": "25:00", "visit_reminders": ["soon"]})
    assert study == nudges.StudySchedule()
    assert len(problems) == 3
    assert problems[0].startswith("checkin_time:")


def test_a_reprompt_postponed_out_of_the_night_asks_in_the_morning(clock, pid):
    # A visit reminder at 19:00 re-prompts after 4 hours (23:00) and gives up after a day.
    nid = _nudge(clock.url, pid, kind="follow_up", flow_id="visit_reminder",
                 due_at=la(2026, 7, 1, 19, 0))
    with session_scope(clock.url) as db:
        db.get(Nudge, nid).params_json = '{"visit_at": "2026-07-03T16:00:00+00:00"}'
    clock.fire(nid, la(2026, 7, 1, 19, 0))
    clock.fire_due(la(2026, 7, 1, 23, 0))
    assert clock.fire_due(la(2026, 7, 2, 7, 0)) == []
    assert [f.outcome for f in clock.fire_due(la(2026, 7, 2, 8, 0))] == ["done"]
    asked = [m.due_at.astimezone(LA).strftime("%d %H:%M") for m in outbound(clock.url, pid)]
    assert asked == ["01 19:00", "02 08:00"]
