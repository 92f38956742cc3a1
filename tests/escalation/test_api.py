"""`bot.escalation` with explicit times: who is paged when, skipped levels, the top of the
chain, deadlines per severity, the report's arithmetic, what an alert may say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from bot import escalation, navigators
from bot.config import Settings
from bot.engine.roster import read_roster_text
from bot.store.db import get_engine, session_scope
from bot.store.models import Escalation, Participant

from .conftest import ROOT, alerts, enrol, escalations, trail

# Tuesday 2026-11-24 15:00 UTC is 10:00 in New York; Saturday 2026-11-28 15:00 is 10:00.
TUE_10 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SAT_10 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
FRI_15 = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)


@pytest.fixture
def shipped(esc_settings: Settings) -> Settings:
    """The shipped roster (flows/roster.yaml): ana weekdays, chloe at weekends..."""
    roster, problems = read_roster_text((ROOT / "flows" / "roster.yaml").read_text("utf-8"),
                                        "roster.yaml")
    assert roster is not None and problems == []
    with session_scope(esc_settings.database_url) as db:
        navigators.replace_roster(db, roster, actor="staff:test")
    return esc_settings


def raise_(settings: Settings, p: Participant, now: datetime, severity: str = "urgent",
           reason: str = "chest_pain") -> Escalation:
    with session_scope(settings.database_url) as db:
        found = db.get(Participant, p.id)
        assert found is not None
        return escalation.raise_escalation(db, found, severity=severity, reason=reason,
                                           source="flow", settings=settings, now=now)


def test_the_navigator_on_call_at_that_time_is_paged(shipped: Settings) -> None:
    url = shipped.database_url
    p = enrol(url)
    raise_(shipped, p, TUE_10, reason="chest_pain")
    raise_(shipped, p, SAT_10, reason="fainting")
    # ana on weekdays (sms + email); chloe at weekends (sms only).
    assert alerts(url) == [(0, "ana", "sms", "queued"), (0, "ana", "email", "pending"),
                           (0, "chloe", "sms", "queued")]


def test_backup_then_coordinator_then_nothing_more(shipped: Settings) -> None:
    url = shipped.database_url
    esc = raise_(shipped, enrol(url), SAT_10)
    for minutes, level in ((10, 1), (20, 2), (30, 3)):
        result = escalation.check_escalations(shipped, SAT_10 + timedelta(minutes=minutes))
        assert result.climbed == [esc.code]
        assert escalations(url)[0].level == level
    top = escalation.check_escalations(shipped, SAT_10 + timedelta(minutes=40))
    assert top.climbed == [] and top.unanswered == [esc.code]
    assert escalations(url)[0].next_alert_at is None
    assert escalation.check_escalations(shipped, SAT_10 + timedelta(hours=5)).unanswered == []
    assert [a[:3] for a in alerts(url)] == [
        (0, "chloe", "sms"), (1, "chloe", "sms"), (2, "ana", "sms"), (2, "ana", "email"),
        (3, "dana", "sms"), (3, "dana", "email")]
    assert trail(url, esc.code)[-1].action == "escalation.unanswered"


def test_levels_with_nobody_on_call_are_skipped(esc_settings: Settings, tmp_path: Path) -> None:
    url = esc_settings.database_url
    text = (ROOT / "flows" / "roster.yaml").read_text("utf-8")
    # Only a backup at weekends: a weekend escalation starts at the backup.
    text = text.replace("    primary: chloe\n    backup: ana\n", "    backup: ana\n")
    roster, _problems = read_roster_text(text, "roster.yaml")
    assert roster is not None
    with session_scope(url) as db:
        navigators.replace_roster(db, roster, actor="staff:test")
    esc = raise_(esc_settings, enrol(url), SAT_10)
    assert esc.level == 2
    assert [a[:3] for a in alerts(url)] == [(2, "ana", "sms"), (2, "ana", "email")]


def test_with_no_roster_at_all_the_escalation_is_kept_and_shouted_about(
        esc_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    url = esc_settings.database_url
    esc = raise_(esc_settings, enrol(url), TUE_10)
    assert esc.state == "open" and alerts(url) == []
    assert [e.action for e in trail(url, esc.code)][:2] == ["escalation.raised",
                                                            "escalation.unrouted"]
    assert any(r.getMessage() == "escalation_unrouted" and r.levelname == "CRITICAL"
               for r in caplog.records)


def test_deadlines_per_severity(shipped: Settings) -> None:
    url = shipped.database_url
    p = enrol(url)
    urgent = raise_(shipped, p, TUE_10, "urgent", "chest_pain")
    high = raise_(shipped, p, TUE_10, "high", "severe_pain")
    routine = raise_(shipped, p, FRI_15, "routine", "symptom_questionnaire_unanswered")
    assert urgent.next_alert_at == TUE_10 + timedelta(minutes=10)
    assert high.next_alert_at == TUE_10 + timedelta(minutes=30)
    # Friday 15:00 in New York: the next business day is Monday, same time.
    assert routine.next_alert_at == datetime(2026, 11, 30, 20, 0, tzinfo=UTC)


def test_deadlines_come_from_study_yaml(shipped: Settings) -> None:
    study = Path(shipped.flows_dir) / "study.yaml"
    study.write_text("escalation:\n  acknowledge_within: {urgent: 3m}\n", encoding="utf-8")
    esc = raise_(shipped, enrol(shipped.database_url), TUE_10)
    assert esc.next_alert_at == TUE_10 + timedelta(minutes=3)


def test_alerts_say_no_more_than_needed(shipped: Settings) -> None:
    url = shipped.database_url
    esc = raise_(shipped, enrol(url), TUE_10)
    short, subject, body = escalation.alert_texts(esc, "P001", 2)
    for text in (short, subject, body):
        assert "+1617" not in text and "P001" in text
    assert f"ACK {esc.code}" in short and f"bot escalations ack {esc.code}" in body
    assert len(short) <= 160 and short.isascii()  # one GSM-7 segment


def test_an_email_channel_without_smtp_fails_loudly_and_the_sms_still_goes(
        shipped: Settings) -> None:
    from dataclasses import replace

    settings = replace(shipped, smtp_host=None)
    esc = raise_(settings, enrol(settings.database_url), TUE_10)
    assert alerts(settings.database_url) == [(0, "ana", "sms", "queued"),
                                             (0, "ana", "email", "failed")]
    assert "escalation.alert_failed" in [e.action for e in trail(settings.database_url,
                                                                 esc.code)]


def test_codes_are_easy_to_type() -> None:
    assert escalation.parse_ack("ACK E7K2Q") == (True, "E7K2Q")
    assert escalation.parse_ack("  ack: e7k2q thanks") == (True, "E7K2Q")
    assert escalation.parse_ack("Ack") == (True, None)
    assert escalation.parse_ack("back E7K2Q") == (False, None)
    assert escalation.parse_ack("ACK EO1IL") == (True, None)  # look-alikes are never codes


def test_report_median_and_p90(esc_settings: Settings) -> None:
    url = esc_settings.database_url
    p = enrol(url)
    with session_scope(url) as db:
        for i, minutes in enumerate((1, 2, 3, 4, 5, 6, 7, 8, 9, 30)):
            db.add(Escalation(code=f"ER{i:03d}", participant_id=p.id, severity="urgent",
                              reason=f"r{i}", state="resolved", created_at=TUE_10,
                              updated_at=TUE_10,
                              acknowledged_at=TUE_10 + timedelta(minutes=minutes),
                              resolved_at=TUE_10 + timedelta(hours=1)))
        db.add(Escalation(code="EOPEN", participant_id=p.id, severity="high", reason="x",
                          state="open", created_at=TUE_10, updated_at=TUE_10))
    with Session(get_engine(url)) as db:
        data = escalation.report(db)
        since = escalation.report(db, since=TUE_10 + timedelta(days=1))
    ack = data["urgent"]["acknowledge"]
    assert (ack.count, ack.median_s, ack.p90_s) == (10, 5.5 * 60, 9 * 60)
    assert data["urgent"]["resolve"].median_s == 3600
    assert (data["high"]["raised"], data["high"]["open"]) == (1, 1)
    assert data["high"]["acknowledge"].median_s is None
    assert since["urgent"]["raised"] == 0
