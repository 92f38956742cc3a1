"""Alerts get through exactly once: a failing SMTP server, a failing Twilio, a duplicate
inbound message, a worker killed while it sends; and the opt-out rule for the safety message."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job
from sqlmodel import col

from bot import escalation
from bot.config import Settings
from bot.store.models import AuditEntry, Message, Participant
from workers import send

from .conftest import (
    ANA,
    PARTICIPANT,
    ROOT,
    Emu,
    Smtp,
    Twilio,
    alerts,
    deliver_all,
    enrol,
    escalations,
    outbound,
    trail,
)


def email_steps(url: str, code: str) -> list[str]:
    return [e.action for e in trail(url, code)
            if e.action.startswith("escalation.alert") and '"email"' in (e.new_json or "")]


def test_smtp_refusing_twice_then_accepting_sends_one_email(
        esc_settings: Settings, participant: Participant, twilio: Twilio,
        smtp: Smtp) -> None:
    url = esc_settings.database_url
    smtp.fail_next = 2
    twilio.sms(PARTICIPANT, "I have chest pain")
    (esc,) = escalations(url)
    t0 = esc.created_at
    first = escalation.check_escalations(esc_settings, t0 + timedelta(seconds=1))
    assert (first.emails.sent, first.emails.retrying) == (0, 1)
    # Not due again before its backoff.
    assert escalation.check_escalations(esc_settings, t0 + timedelta(seconds=5)).emails == \
        escalation.EmailCounts()
    second = escalation.check_escalations(esc_settings, t0 + timedelta(seconds=40))
    assert (second.emails.sent, second.emails.retrying) == (0, 1)
    third = escalation.check_escalations(esc_settings, t0 + timedelta(minutes=2))
    assert third.emails.sent == 1
    for seconds in (150, 200, 400):
        escalation.check_escalations(esc_settings, t0 + timedelta(seconds=seconds))
    assert smtp.refused == 2 and len(smtp.to("ana@example.org")) == 1
    assert (0, "ana", "email", "sent") in alerts(url)
    assert email_steps(url, esc.code) == ["escalation.alert_failed", "escalation.alert_failed",
                                          "escalation.alerted"]


def test_smtp_server_down_then_up(esc_settings: Settings, participant: Participant,
                                  twilio: Twilio, smtp: Smtp) -> None:
    url = esc_settings.database_url
    smtp.stop()
    twilio.sms(PARTICIPANT, "I fainted")
    (esc,) = escalations(url)
    t0 = esc.created_at
    assert escalation.check_escalations(esc_settings, t0).emails.retrying == 1
    assert escalation.check_escalations(esc_settings, t0 + timedelta(seconds=31)) \
        .emails.retrying == 1
    smtp.start()
    assert escalation.check_escalations(esc_settings, t0 + timedelta(minutes=2)).emails.sent == 1
    assert escalation.check_escalations(esc_settings, t0 + timedelta(minutes=3)).emails.sent == 0
    assert len(smtp.to("ana@example.org")) == 1
    failed = [e for e in trail(url, esc.code) if e.action == "escalation.alert_failed"]
    assert len(failed) == 2 and "ConnectionRefusedError" in (failed[0].new_json or "")


def test_twilio_failing_two_sends_still_delivers_one_alert(
        esc_settings: Settings, participant: Participant, twilio: Twilio, emu: Emu,
        ctx: send.SendContext) -> None:
    url = esc_settings.database_url
    emu.control.add_rule(code=500, to=ANA, times=2)
    twilio.sms(PARTICIPANT, "I can't breathe")
    (esc,) = escalations(url)
    later = esc.created_at
    for _ in range(6):
        later += timedelta(hours=1)  # past any backoff
        deliver_all(ctx, url, later)
        # The periodic check before the deadline adds no alert of its own.
        escalation.check_escalations(esc_settings, esc.created_at + timedelta(minutes=5))
    assert len(emu.to(ANA)) == 1
    (row,) = outbound(url, Message.kind == "alert")
    assert row.status in ("queued", "sent", "delivered") and row.attempts == 3
    assert [a for a in alerts(url) if a[2] == "sms"] == [(0, "ana", "sms", "queued")]


def test_a_duplicate_inbound_message_raises_one_escalation(
        esc_settings: Settings, participant: Participant, twilio: Twilio,
        redis: Redis) -> None:
    url = esc_settings.database_url
    params = twilio.params(PARTICIPANT, "quiero morir")
    for _ in range(3):
        assert twilio.post(params).status_code == 200
    (esc,) = escalations(url)
    assert esc.repeats == 0 and esc.reason == "self_harm"
    assert len(outbound(url, Message.kind == "safety")) == 1
    assert len(outbound(url, Message.kind == "alert")) == 1
    assert [a for a, *_ in alerts(url)] == [0, 0]
    raised = [e for e in trail(url, esc.code) if e.action == "escalation.raised"]
    assert len(raised) == 1
    # Jobs in Redis carry ids only: no body, no phone number.
    for key in redis.scan_iter(match="rq:job:*"):
        if key.count(b":") != 2:
            continue
        job = Job.fetch(key.decode().rsplit(":", 1)[1], connection=redis)
        shown = repr(job.args) + repr(job.kwargs) + (job.description or "")
        assert "morir" not in shown and PARTICIPANT not in shown and ANA not in shown
        assert all(isinstance(i, int) for arg in job.args for i in arg)


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "DATABASE_", "SMTP_", "REDIS_"))}
    env.update({"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
                "SMTP_HOST": settings.smtp_host or "", "SMTP_PORT": str(settings.smtp_port),
                "SMTP_FROM": settings.smtp_from, "FLOWS_DIR": settings.flows_dir,
                "SECRET_KEY": settings.secret_key})
    return env


def test_a_worker_killed_while_emailing_loses_nothing(
        esc_settings: Settings, participant: Participant, twilio: Twilio,
        smtp: Smtp) -> None:
    url = esc_settings.database_url
    gate = threading.Event()
    smtp.hold = gate
    twilio.sms(PARTICIPANT, "heavy bleeding")
    (esc,) = escalations(url)
    proc = subprocess.Popen([sys.executable, "-m", "workers.escalate", "--once"], cwd=ROOT,
                            env=_worker_env(esc_settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert smtp.holding.wait(30), "the worker never reached the SMTP server"
        proc.kill()  # mid-send: the alert is claimed, the email not accepted
        proc.wait(10)
    finally:
        gate.set()
        if proc.poll() is None:
            proc.kill()
    assert smtp.accepted == []
    assert (0, "ana", "email", "sending") in alerts(url)
    # Within the lease nobody sends it again; after it, the periodic check does, once.
    now = esc.created_at + timedelta(seconds=30)
    assert escalation.check_escalations(esc_settings, now).emails.sent == 0
    later = esc.created_at + escalation.EMAIL_LEASE + timedelta(minutes=1)
    assert escalation.check_escalations(esc_settings, later).emails.sent == 1
    assert escalation.check_escalations(esc_settings, later + timedelta(minutes=1)) \
        .emails.sent == 0
    assert len(smtp.to("ana@example.org")) == 1
    # The climb was never at risk: its state is in the database.
    climb = escalation.check_escalations(esc_settings, esc.created_at + timedelta(minutes=11))
    assert climb.climbed == [esc.code]


def test_a_check_killed_before_its_commit_is_simply_done_again(
        esc_settings: Settings, participant: Participant, twilio: Twilio,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = esc_settings.database_url
    twilio.sms(PARTICIPANT, "chest pain")
    (esc,) = escalations(url)
    due = esc.created_at + timedelta(minutes=11)

    def die(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # what a kill looks like from inside: nothing committed

    with monkeypatch.context() as m:
        m.setattr(escalation.audit, "record", die)
        with pytest.raises(KeyboardInterrupt):
            escalation.check_escalations(esc_settings, due)
    assert escalations(url)[0].level == 0
    assert escalation.check_escalations(esc_settings, due).climbed == [esc.code]
    assert escalation.check_escalations(esc_settings, due).climbed == []
    assert [a[:3] for a in alerts(url)].count((1, "ana", "sms")) == 1


# ---- opted out ---------------------------------------------------------------------------------


def test_opted_out_gets_no_safety_message_but_the_navigator_is_alerted(
        esc_settings: Settings, twilio: Twilio, app: object) -> None:
    url = esc_settings.database_url
    enrol(url, consent="opted_out")
    assert twilio.sms(PARTICIPANT, "no puedo respirar") == []
    (esc,) = escalations(url)
    assert outbound(url, Message.kind == "safety") == []
    assert len(outbound(url, Message.kind == "alert")) == 1
    assert "escalation.safety_withheld" in [e.action for e in trail(url, esc.code)]


def test_opted_out_gets_the_safety_message_when_the_study_says_so(
        esc_settings: Settings, twilio: Twilio, app: object, ctx: send.SendContext,
        emu: Emu) -> None:
    url = esc_settings.database_url
    study = Path(esc_settings.flows_dir) / "study.yaml"
    study.write_text(study.read_text(encoding="utf-8").replace(
        "safety_message_when_opted_out: false", "safety_message_when_opted_out: true"),
        encoding="utf-8")
    future = time.time() + 5  # a new mtime, so the cached policy is read again
    os.utime(study, (future, future))
    enrol(url, consent="opted_out")
    twilio.sms(PARTICIPANT, "no puedo respirar")
    (safety,) = outbound(url, Message.kind == "safety")
    assert safety.status == "pending" and safety.urgent
    deliver_all(ctx, url)
    assert len(emu.to(PARTICIPANT)) == 1
    overrides = [e for e in _audit(url) if e.action == "outbox.consent_override"]
    assert len(overrides) == 1
    # Nothing else reaches them: the bot's ordinary replies stay silent.
    assert outbound(url, col(Message.kind).in_(("reply", "system"))) == []


def _audit(url: str) -> list[AuditEntry]:
    from sqlmodel import Session, select

    from bot.store.db import get_engine

    with Session(get_engine(url), expire_on_commit=False) as db:
        return list(db.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all())
