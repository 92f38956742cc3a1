"""Navigators texting the bot, and the `bot navigators` / `bot escalations` commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlmodel import Session, col, select

from bot import escalation
from bot.cli import main
from bot.config import Settings
from bot.store.db import get_engine
from bot.store.models import AuditEntry, Message, Navigator, OnCallWindow, Participant

from .conftest import (
    ANA,
    BEN,
    PARTICIPANT,
    ROOT,
    Twilio,
    alerts,
    enrol,
    escalations,
    outbound,
    trail,
)

Cli = Callable[..., Result]


@pytest.fixture
def cli(esc_settings: Settings) -> Cli:
    def run(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), obj=esc_settings, catch_exceptions=False)
    return run


# ---- ACK by SMS ------------------------------------------------------------------------------


def test_ack_forms(esc_settings: Settings, participant: Participant, twilio: Twilio) -> None:
    url = esc_settings.database_url
    twilio.sms(PARTICIPANT, "chest pain")
    (esc,) = escalations(url)
    assert twilio.sms(ANA, "hello?") == [
        "Reply ACK and the code from the alert (e.g. ACK E7K2Q) to acknowledge it."]
    assert twilio.sms(ANA, "ACK EZZZZ") == [
        "No escalation EZZZZ. Reply ACK and the code from the alert."]
    assert escalations(url)[0].state == "open"
    # A bare ACK is enough when one open escalation was sent to this navigator.
    (reply,) = twilio.sms(ANA, "Ack.")
    assert reply.startswith(f"Thank you. {esc.code} is acknowledged")
    (again,) = twilio.sms(BEN, f"ACK {esc.code}")
    assert again.startswith(f"{esc.code} was acknowledged by ana at ")
    assert escalations(url)[0].acknowledged_by == "ana"
    # Navigators' messages are kept, but never as a participant's.
    kept = outbound(url, Message.kind == "navigator")
    assert len(kept) == 4 and all(m.participant_id is None for m in kept)


def test_a_bare_ack_with_several_open_asks_which(
        esc_settings: Settings, participant: Participant, twilio: Twilio) -> None:
    twilio.sms(PARTICIPANT, "chest pain")
    twilio.sms(PARTICIPANT, "I fainted")
    codes = sorted(e.code for e in escalations(esc_settings.database_url))
    assert twilio.sms(ANA, "ack") == [
        f"Several alerts are open: {', '.join(codes)}. Reply ACK and the code."]
    assert twilio.sms(BEN, "ack") == ["No open alert of yours to acknowledge."]


def test_a_duplicate_ack_is_answered_once(esc_settings: Settings, participant: Participant,
                                          twilio: Twilio) -> None:
    twilio.sms(PARTICIPANT, "chest pain")
    (esc,) = escalations(esc_settings.database_url)
    params = twilio.params(ANA, f"ACK {esc.code}")
    assert len(twilio.sms(ANA, params["Body"], params["MessageSid"])) == 1
    assert twilio.sms(ANA, params["Body"], params["MessageSid"]) == []
    acks = [e for e in trail(esc_settings.database_url, esc.code)
            if e.action == "escalation.acknowledged"]
    assert len(acks) == 1 and acks[0].actor == "navigator:ana"


def test_ack_cancels_alerts_not_sent_yet(esc_settings: Settings, participant: Participant,
                                         twilio: Twilio) -> None:
    url = esc_settings.database_url
    twilio.sms(PARTICIPANT, "chest pain")
    (esc,) = escalations(url)
    twilio.sms(ANA, f"ACK {esc.code}")
    assert alerts(url) == [(0, "ana", "sms", "cancelled"), (0, "ana", "email", "cancelled")]
    (sms,) = outbound(url, Message.kind == "alert")
    assert sms.status == "cancelled"
    assert escalation.check_escalations(esc_settings, esc.created_at + timedelta(hours=1)) \
        .emails.sent == 0


def test_a_removed_navigator_is_an_unknown_sender(
        esc_settings: Settings, participant: Participant, twilio: Twilio, cli: Cli) -> None:
    twilio.sms(PARTICIPANT, "chest pain")
    assert cli("navigators", "remove", "ana").exit_code == 0
    (esc,) = escalations(esc_settings.database_url)
    (reply,) = twilio.sms(ANA, f"ACK {esc.code}")
    assert "cannot answer" in reply
    assert escalations(esc_settings.database_url)[0].state == "open"


# ---- bot escalations --------------------------------------------------------------------------


def test_escalation_commands(esc_settings: Settings, participant: Participant, twilio: Twilio,
                             cli: Cli) -> None:
    url = esc_settings.database_url
    twilio.sms(PARTICIPANT, "chest pain")
    twilio.sms(PARTICIPANT, "a bit short of breath")
    first, second = escalations(url)
    listed = cli("escalations", "list", "--state", "open")
    assert listed.exit_code == 0
    assert first.code in listed.output and "chest_pain" in listed.output
    assert "P001" in listed.output and PARTICIPANT not in listed.output

    shown = cli("escalations", "show", first.code.lower())
    assert shown.exit_code == 0
    assert "escalation.raised" in shown.output and "level 0  sms" in shown.output

    acked = cli("escalations", "ack", first.code, "--by", "carla")
    assert acked.output.strip() == f"{first.code} acknowledged by carla"
    assert "already by carla" in cli("escalations", "ack", first.code, "--by", "x").output
    assert cli("escalations", "resolve", first.code, "--note", "Called her; ER visit, fine.",
               "--by", "carla").output.strip() == f"{first.code} resolved"
    # Resolving one nobody acknowledged acknowledges it too.
    assert cli("escalations", "resolve", second.code, "--note", "Spoke by phone.").exit_code == 0
    done = {e.code: e for e in escalations(url)}
    assert done[first.code].resolution_note == "Called her; ER visit, fine."
    assert done[second.code].acknowledged_at is not None
    steps = [e.action for e in trail(url, second.code)]
    assert steps[-2:] == ["escalation.acknowledged", "escalation.resolved"]
    resolved = [e for e in trail(url, first.code) if e.action == "escalation.resolved"][0]
    assert "ER visit" not in (resolved.new_json or "")  # the note stays off the trail

    again = CliRunner().invoke(main, ["escalations", "resolve", first.code, "--note", "x"],
                               obj=esc_settings)
    assert again.exit_code == 1 and "resolved already" in again.output
    unknown = CliRunner().invoke(main, ["escalations", "ack", "EXXXX"], obj=esc_settings)
    assert unknown.exit_code == 1 and "no escalation EXXXX" in unknown.output

    report = json.loads(cli("escalations", "report", "--format", "json").output)
    assert report["urgent"]["raised"] == 1 and report["urgent"]["acknowledge"]["count"] == 1
    assert report["high"]["resolve"]["count"] == 1 and report["routine"]["raised"] == 0
    text = cli("escalations", "report").output
    assert text.splitlines()[0].split()[:3] == ["SEVERITY", "RAISED", "OPEN"]


def test_escalations_check_command(esc_settings: Settings, participant: Participant,
                                   twilio: Twilio, cli: Cli) -> None:
    twilio.sms(PARTICIPANT, "chest pain")
    (esc,) = escalations(esc_settings.database_url)
    when = (esc.created_at + timedelta(minutes=11)).strftime("%Y-%m-%dT%H:%M:%S")
    result = cli("escalations", "check", "--now", when)
    assert result.output.startswith(
        "paged 0, climbed 1, unanswered at the top 0; emails sent 2")
    assert escalations(esc_settings.database_url)[0].level == 1


# ---- bot navigators ---------------------------------------------------------------------------


def test_navigator_commands(esc_settings: Settings, cli: Cli) -> None:
    url = esc_settings.database_url
    added = cli("navigators", "add", "erin", "--phone", "617 555 0160", "--region", "us",
                "--email", "erin@example.org", "--channels", "sms,email", "--language", "pt")
    assert added.exit_code == 0 and "+16*******60" in added.output
    bad = CliRunner().invoke(main, ["navigators", "add", "finn", "--channels", "email"],
                             obj=esc_settings)
    assert bad.exit_code == 1 and "no email address" in bad.output
    bad = CliRunner().invoke(main, ["navigators", "add", "finn", "--phone", "+16175550161",
                                    "--channels", "sms,pager"], obj=esc_settings)
    assert bad.exit_code == 1 and "pager" in bad.output
    listed = cli("navigators", "list").output
    assert "erin" in listed and "+16175550160" not in listed

    # Nobody on call yet: the schedule command says so and fails.
    assert cli("navigators", "oncall").exit_code == 1
    assert cli("navigators", "oncall", "erin", "--days", "mon-fri", "--from", "08:00",
               "--to", "20:00", "--timezone", "America/Chicago").exit_code == 1  # gaps
    shown = CliRunner().invoke(main, ["navigators", "oncall"], obj=esc_settings)
    assert shown.exit_code == 1
    assert "no one is on call (America/Chicago): Mon-Fri 00:00-08:00, 20:00-24:00; " \
           "Sat, Sun all day" in shown.output
    other_zone = CliRunner().invoke(main, ["navigators", "oncall", "erin", "--timezone",
                                           "Europe/Paris"], obj=esc_settings)
    assert other_zone.exit_code == 1 and "one time zone per roster" in other_zone.output
    cli("navigators", "oncall", "erin", "--days", "daily", "--from", "20:00", "--to", "08:00")
    cli("navigators", "oncall", "erin", "--days", "sat,sun", "--from", "08:00", "--to", "20:00")
    cli("navigators", "add", "gus", "--phone", "+16175550162", "--coordinator")
    cli("navigators", "oncall", "gus", "--role", "backup")
    ok = CliRunner().invoke(main, ["navigators", "oncall"], obj=esc_settings)
    assert ok.exit_code == 0, ok.output
    assert "coordinator: gus" in ok.output and "backup now: gus" in ok.output

    assert cli("navigators", "oncall", "erin", "--clear").exit_code == 1  # gaps again
    assert cli("navigators", "remove", "erin").exit_code == 0
    with Session(get_engine(url)) as db:
        erin = db.exec(select(Navigator).where(Navigator.name == "erin")).one()
        assert not erin.active and erin.phone is None
        assert db.exec(select(OnCallWindow).where(
            OnCallWindow.navigator_id == erin.id)).all() == []
        actions = [e.action for e in db.exec(select(AuditEntry).where(
            AuditEntry.entity == "navigator", AuditEntry.entity_id == "erin")
            .order_by(col(AuditEntry.id))).all()]
    assert actions[0] == "navigator.add" and actions[-1] == "navigator.remove"
    assert "navigator.on_call" in actions and "navigator.off_call" in actions


def test_load_the_roster_file(esc_settings: Settings, cli: Cli, tmp_path: Path) -> None:
    url = esc_settings.database_url
    loaded = cli("navigators", "load", str(ROOT / "flows" / "roster.yaml"))
    assert loaded.exit_code == 0
    assert "4 added, 0 updated, 0 removed, 8 on-call windows" in loaded.output
    again = cli("navigators", "load", str(ROOT / "flows" / "roster.yaml"))
    assert "0 added, 0 updated, 0 removed, 8 on-call windows" in again.output
    # A broken file changes nothing.
    broken = tmp_path / "roster.yaml"
    broken.write_text((ROOT / "flows" / "roster.yaml").read_text(encoding="utf-8")
                      .replace("days: sat-sun ", "days: sat "), encoding="utf-8")
    result = CliRunner().invoke(main, ["navigators", "load", str(broken)], obj=esc_settings)
    assert result.exit_code == 1 and "Sun 08:00-20:00" in result.output
    with Session(get_engine(url)) as db:
        assert len(db.exec(select(OnCallWindow)).all()) == 8
    # Swapping two navigators' phones in the file is fine.
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text((ROOT / "flows" / "roster.yaml").read_text(encoding="utf-8")
                       .replace("+16175550150", "+1TEMP").replace("+16175550151", "+16175550150")
                       .replace("+1TEMP", "+16175550151"), encoding="utf-8")
    assert "0 added, 2 updated" in cli("navigators", "load", str(swapped)).output


def test_an_unknown_sender_is_still_unknown(esc_settings: Settings, twilio: Twilio,
                                            app: object) -> None:
    enrol(esc_settings.database_url)
    (reply,) = twilio.sms("+16175550199", "ACK E2345")
    assert "cannot answer" in reply
