"""Failure rules: each code fails where and how Twilio fails it; `times` and `to` narrow them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.cli import main
from bot.emulator import EmulatorServer, Rule, twilio_client
from bot.emulator.control import EmulatorControl, EmulatorError
from bot.emulator.rules import RuleError

from .conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, PARTICIPANT, Receiver, make_config
from .test_callbacks import wait_status

OTHER = "+15551230002"


def send(client: Client, to: str = PARTICIPANT, **kwargs: str) -> str:
    sender = "whatsapp:" + BOT_NUMBER if to.startswith("whatsapp:") else BOT_NUMBER
    return str(client.messages.create(to=to, from_=sender, body="x", **kwargs).sid)


@pytest.mark.parametrize(
    ("code", "http_status", "twilio_code"),
    [
        (20429, 429, 20429),
        (21610, 400, 21610),
        (21211, 400, 21211),
        (21614, 400, 21614),
        (500, 500, 20500),
        (503, 503, 20500),
    ],
)
def test_create_time_failures_raise_in_the_client(
    client: Client, control: EmulatorControl, code: int, http_status: int, twilio_code: int
) -> None:
    control.add_rule(code)
    with pytest.raises(TwilioRestException) as caught:
        send(client)
    assert caught.value.status == http_status
    assert caught.value.code == twilio_code
    # A refused send leaves no message behind, as on Twilio.
    assert control.messages(to=PARTICIPANT) == []
    assert control.health()["rejected"] == 1


@pytest.mark.parametrize(
    ("code", "to", "statuses"),
    [
        (30003, PARTICIPANT, ["queued", "sent", "undelivered"]),
        (30006, PARTICIPANT, ["queued", "sent", "undelivered"]),
        (63016, "whatsapp:" + PARTICIPANT, ["queued", "failed"]),
    ],
)
def test_delivery_failures_are_accepted_then_reported(
    client: Client,
    control: EmulatorControl,
    receiver: Receiver,
    code: int,
    to: str,
    statuses: list[str],
) -> None:
    control.add_rule(code)
    sid = send(client, to, status_callback=receiver.url("/twilio/status"))
    calls = receiver.wait_for("/twilio/status", len(statuses))
    assert [c.params["MessageStatus"] for c in calls] == statuses
    assert all(c.signature_ok for c in calls)
    assert "ErrorCode" not in calls[0].params
    assert calls[-1].params["ErrorCode"] == str(code)
    message = client.messages(sid).fetch()
    assert message.status == statuses[-1]
    assert message.error_code == code
    assert message.error_message


def test_times_counts_down_then_sends_pass(client: Client, control: EmulatorControl) -> None:
    control.add_rule(20429, times=2)
    for _ in range(2):
        with pytest.raises(TwilioRestException) as caught:
            send(client)
        assert caught.value.code == 20429
    assert send(client)
    assert send(client)
    assert control.rules()[0]["times"] == 0
    assert control.rules()[0]["hits"] == 2


def test_times_for_delivery_failures(client: Client, control: EmulatorControl) -> None:
    control.add_rule(30003, to=PARTICIPANT, times=1)
    first, second = send(client), send(client)
    assert wait_status(client, first, "undelivered") == "undelivered"
    assert wait_status(client, second, "delivered") == "delivered"


def test_rules_match_the_recipient_only(client: Client, control: EmulatorControl) -> None:
    control.add_rule(21610, to=PARTICIPANT)
    with pytest.raises(TwilioRestException):
        send(client)
    # On either channel: the rule names a phone, not an address.
    with pytest.raises(TwilioRestException):
        send(client, "whatsapp:" + PARTICIPANT)
    assert send(client, OTHER)


def test_whatsapp_window_rule_leaves_sms_fallback_alone(
    client: Client, control: EmulatorControl
) -> None:
    control.add_rule(63016, to=PARTICIPANT)
    failed, fallback = send(client, "whatsapp:" + PARTICIPANT), send(client, PARTICIPANT)
    assert wait_status(client, failed, "failed") == "failed"
    assert wait_status(client, fallback, "delivered") == "delivered"


def test_rules_can_be_listed_and_cleared(client: Client, control: EmulatorControl) -> None:
    control.add_rule(21610)
    control.add_rule(30003, to=OTHER, times=3)
    assert [(r["code"], r["to"], r["times"], r["stage"]) for r in control.rules()] == [
        (21610, None, None, "create"), (30003, OTHER, 3, "delivery")]
    control.clear_rules()
    assert control.rules() == []
    assert send(client)


@pytest.mark.parametrize(
    "bad",
    [{"code": "30003"}, {"code": 30003, "times": 0}, {"to": PARTICIPANT},
     {"code": 30003, "channel": "fax"}, {"code": 30003, "color": "red"}, [1]],
)
def test_bad_rules_are_400(control: EmulatorControl, bad: object) -> None:
    with pytest.raises(EmulatorError, match="HTTP 400"):
        control._call("POST", "/_emulator/rules", bad)


def test_rules_from_the_config(receiver: Receiver) -> None:
    config = make_config(receiver, rules=[Rule.parse("21610:" + PARTICIPANT + ":1")])
    with EmulatorServer(config) as emu:
        twilio = twilio_client(emu.url, ACCOUNT_SID, AUTH_TOKEN)
        with pytest.raises(TwilioRestException) as caught:
            send(twilio)
        assert caught.value.code == 21610
        assert send(twilio)
        twilio.http_client.session.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30003", (30003, None, None, None)),
        ("21610:+15551230001", (21610, "+15551230001", None, None)),
        ("20429::2", (20429, None, 2, None)),
        ("30003:+15551230001:3", (30003, "+15551230001", 3, None)),
        ("63016", (63016, None, None, "whatsapp")),
        ("63016:whatsapp:+15551230001:1", (63016, "whatsapp:+15551230001", 1, "whatsapp")),
        ("30003:whatsapp:+15551230001", (30003, "whatsapp:+15551230001", None, "whatsapp")),
    ],
)
def test_rule_syntax(text: str, expected: tuple[object, ...]) -> None:
    rule = Rule.parse(text)
    assert (rule.code, rule.to, rule.times, rule.channel) == expected


@pytest.mark.parametrize("text", ["", "abc", "30003:2", "30003:+1555:0", "x:+1555"])
def test_bad_rule_syntax(text: str) -> None:
    with pytest.raises(RuleError):
        Rule.parse(text)


def test_cli_rejects_bad_fail_option() -> None:
    result = CliRunner().invoke(main, ["emulator", "--fail", "nope"])
    assert result.exit_code == 2
    assert "CODE must be a number" in result.output
