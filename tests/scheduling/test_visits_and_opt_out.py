"""Visit reminders follow their visit; an opt-out cancels every pending nudge."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from sqlmodel import select

from bot import conversation, visits
from bot.cli import main
from bot.store.db import session_scope
from bot.store.models import AuditEntry, Participant, Visit
from bot.twilio_io import Inbound

from .conftest import LA, la, nudge_rows, outbound, params, sessions

PHONE = "+15555550123"


def _add_visit(clock, pid, at, now):
    with session_scope(clock.url) as db:
        v = visits.add(db, db.get(Participant, pid), name="Week 4", scheduled_at=at,
                       actor="staff:test", now=now, study=clock.study)
        return v.id


def _visit(clock, vid):
    with session_scope(clock.url) as db:
        return db.get(Visit, vid)


def _local(rows):
    return [n.due_at.astimezone(LA).strftime("%m-%d %H:%M") for n in rows]


def test_a_visit_gets_its_reminders_at_the_study_offsets(clock, pid):
    vid = _add_visit(clock, pid, la(2026, 3, 10, 9, 30), la(2026, 3, 1, 12, 0))
    rows = nudge_rows(clock.url, kind="visit_reminder")
    # -3d@10:00, -1d@18:00, -2h (07:30, in quiet hours: 08:00, still before the visit);
    # the visit is after the DST change, the first reminder before it.
    assert _local(rows) == ["03-07 10:00", "03-09 18:00", "03-10 08:00"]
    assert {n.visit_id for n in rows} == {vid}
    assert {n.flow_id for n in rows} == {"visit_reminder"}
    assert params(rows[0]) == {"visit_at": "2026-03-10T16:30:00+00:00"}
    assert rows[0].dedupe_key == f"visit:{vid}:20260310T163000Z:-3d@10:00"


def test_firing_a_visit_reminder_starts_the_reminder_flow(clock, pid):
    _add_visit(clock, pid, la(2026, 3, 10, 9, 30), la(2026, 3, 1, 12, 0))
    fired = clock.fire_due(la(2026, 3, 7, 10, 0))
    assert [f.outcome for f in fired] == ["done"]
    (msg,) = outbound(clock.url, pid)
    assert "Tuesday" in msg.body and "9:30" in msg.body  # in the participant's local time
    assert sessions(clock.url, pid)[0].flow_id == "visit_reminder"


def test_rescheduling_a_visit_moves_its_reminders(clock, pid):
    vid = _add_visit(clock, pid, la(2026, 3, 10, 9, 30), la(2026, 3, 1, 12, 0))
    old = nudge_rows(clock.url, kind="visit_reminder")
    with session_scope(clock.url) as db:
        planned = visits.reschedule(db, db.get(Visit, vid), la(2026, 3, 17, 14, 0),
                                    actor="staff:test", now=la(2026, 3, 2, 9, 0),
                                    study=clock.study)
    assert planned == 3
    pending = nudge_rows(clock.url, kind="visit_reminder", status="pending")
    assert _local(pending) == ["03-14 10:00", "03-16 18:00", "03-17 12:00"]
    assert {n.id for n in nudge_rows(clock.url, kind="visit_reminder", status="cancelled")} \
        == {n.id for n in old}
    with session_scope(clock.url) as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "visit.reschedule")).one()
        assert json.loads(entry.new_json)["scheduled_at"] == "2026-03-17T21:00:00+00:00"
        assert json.loads(entry.old_json)["scheduled_at"] == "2026-03-10T16:30:00+00:00"


def test_a_reminder_already_queued_for_the_old_time_does_nothing(clock, pid):
    vid = _add_visit(clock, pid, la(2026, 3, 10, 9, 30), la(2026, 3, 1, 12, 0))
    (first, *_rest) = nudge_rows(clock.url, kind="visit_reminder")
    with session_scope(clock.url) as db:
        visits.reschedule(db, db.get(Visit, vid), la(2026, 3, 17, 14, 0), actor="staff:test",
                          now=la(2026, 3, 2, 9, 0), study=clock.study)
        # A job for it was already in flight when the visit moved.
        db.connection().exec_driver_sql(
            f"UPDATE nudge SET status = 'pending' WHERE id = {first.id}")
    assert clock.fire(first.id, la(2026, 3, 7, 10, 0)).outcome == "stale"
    assert outbound(clock.url, pid) == []


@pytest.mark.parametrize("close", ["complete", "cancel"])
def test_completing_or_cancelling_a_visit_cancels_its_reminders(clock, pid, close):
    vid = _add_visit(clock, pid, la(2026, 3, 10, 9, 30), la(2026, 3, 1, 12, 0))
    with session_scope(clock.url) as db:
        n = getattr(visits, close)(db, db.get(Visit, vid), actor="staff:test",
                                   now=la(2026, 3, 8, 9, 0))
    assert n == 3
    assert _visit(clock, vid).status == {"complete": "completed", "cancel": "cancelled"}[close]
    assert nudge_rows(clock.url, kind="visit_reminder", status="pending") == []
    # And planning does not bring them back.
    assert clock.plan(la(2026, 3, 8, 10, 0)).revived == 0
    assert nudge_rows(clock.url, kind="visit_reminder", status="pending") == []
    with session_scope(clock.url) as db, pytest.raises(visits.VisitError):
        visits.reschedule(db, db.get(Visit, vid), la(2026, 3, 20, 9, 0), actor="staff:test",
                          now=la(2026, 3, 8, 10, 0), study=clock.study)


def test_opting_out_cancels_every_pending_nudge(clock, pid):
    _add_visit(clock, pid, la(2026, 3, 10, 9, 30), la(2026, 3, 1, 12, 0))
    clock.plan(la(2026, 3, 2, 6, 0))
    clock.fire_due(la(2026, 3, 2, 8, 30))  # today's check-in: its re-prompt is pending
    pending = nudge_rows(clock.url, status="pending")
    assert {n.kind for n in pending} == {"checkin", "visit_reminder", "timeout"}

    inbound = Inbound(sid="SM" + uuid.uuid4().hex, phone=PHONE, channel="sms",
                      to="+15005550006", body="STOP", opt_out_type=None, num_media=0)
    with session_scope(clock.url) as db:
        outcome = conversation.handle_inbound(db, inbound, settings=clock.settings,
                                              registry=clock.registry,
                                              now=la(2026, 3, 2, 9, 0))
    assert outcome.result in ("replied", "keyword_stop")
    assert nudge_rows(clock.url, status="pending") == []
    assert {n.id for n in nudge_rows(clock.url, status="cancelled")} == {n.id for n in pending}
    # Planning leaves them alone, and a nudge that was already queued sends nothing.
    assert clock.plan(la(2026, 3, 2, 10, 0)).added == 0
    assert clock.fire_due(la(2026, 3, 7, 10, 0)) == []


def test_opting_back_in_brings_checkins_and_reminders_back(clock, pid):
    _add_visit(clock, pid, la(2026, 3, 10, 9, 30), la(2026, 3, 1, 12, 0))
    clock.plan(la(2026, 3, 2, 6, 0))
    for body, at in (("STOP", la(2026, 3, 2, 7, 0)), ("START", la(2026, 3, 2, 7, 30))):
        inbound = Inbound(sid="SM" + uuid.uuid4().hex, phone=PHONE, channel="sms",
                          to="+15005550006", body=body, opt_out_type=None, num_media=0)
        with session_scope(clock.url) as db:
            conversation.handle_inbound(db, inbound, settings=clock.settings,
                                        registry=clock.registry, now=at)
    counts = clock.plan(la(2026, 3, 2, 7, 45))
    assert counts.revived == 5  # two check-ins, three reminders
    assert {n.kind for n in nudge_rows(clock.url, status="pending")} == {"checkin",
                                                                         "visit_reminder"}


def test_bot_visits_commands(sched_settings, pid):
    def bot(*args):
        result = CliRunner().invoke(main, list(args), obj=sched_settings,
                                    catch_exceptions=False)
        return result.exit_code, result.output

    code, out = bot("visits", "add", "P-001", "--at", "2099-03-10 09:30", "--name", "Week 4",
                    "--actor", "coordinator")
    assert code == 0, out
    assert "visit 1 for P-001: Week 4, Tue 2099-03-10 09:30 PDT" in out
    assert out.count("reminder ") == 3
    code, out = bot("visits", "reschedule", "1", "--at", "2099-03-12T10:00-08:00")
    assert code == 0 and "Thu 2099-03-12 11:00 PDT" in out
    code, out = bot("visits", "list")
    assert code == 0 and "P-001" in out and out.rstrip().endswith("3")
    code, out = bot("visits", "complete", "1")
    assert code == 0 and "completed; 3 pending reminders cancelled" in out
    code, out = bot("visits", "list")
    assert out.strip() == "no visits"
    code, out = bot("visits", "cancel", "1")
    assert code == 1
    code, out = bot("visits", "add", "P-404", "--at", "2099-03-10 09:30")
    assert code == 1
