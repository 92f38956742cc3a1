"""Delivery decisions, without I/O: error classes, backoff, channels, senders, rates."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import urllib3

from bot import delivery, templates
from bot.config import Settings
from bot.delivery import Action

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
REGISTRY = templates.TemplateRegistry.parse({
    "checkin": {"en": {"content_sid": "HX" + "a" * 32, "variables": {"1": "{study_name}"}},
                "es-MX": {"content_sid": "HX" + "b" * 32}},
    "default": {"fr": {"content_sid": "HX" + "c" * 32, "variables": {"1": "{body}"}}},
})
VALUES = {"study_name": "HeartStudy", "study_contact": "+1 617 555 0123"}


@pytest.mark.parametrize(("code", "status", "action"), [
    (20429, 429, Action.RETRY), (20500, 500, Action.RETRY), (None, 503, Action.RETRY),
    (21610, 400, Action.OPTED_OUT), (21211, 400, Action.FINAL), (21614, 400, Action.FINAL),
    (30006, None, Action.FINAL), (30003, None, Action.SLOW_RETRY),
    (30001, None, Action.SLOW_RETRY), (63016, None, Action.WINDOW),
    (63003, None, Action.FINAL), (21619, 400, Action.FINAL), (None, None, Action.FINAL),
])
def test_error_classes(code: int | None, status: int | None, action: Action) -> None:
    failure = delivery.classify_code(code, status)
    assert failure.action is action
    assert failure.code == code


def test_transport_errors_say_whether_twilio_may_have_the_message() -> None:
    refused = requests.ConnectionError(urllib3.exceptions.NewConnectionError(
        None, "Connection refused"))  # type: ignore[arg-type]
    assert delivery.classify_transport_error(refused).maybe_sent is False
    assert delivery.classify_transport_error(requests.ConnectTimeout()).maybe_sent is False
    assert delivery.classify_transport_error(requests.ReadTimeout()).maybe_sent is True
    dropped = requests.ConnectionError("Connection aborted: RemoteDisconnected")
    assert delivery.classify_transport_error(dropped).maybe_sent is True
    assert all(delivery.classify_transport_error(e).action is Action.RETRY
               for e in (refused, dropped, requests.ReadTimeout()))


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 6):
        nominal = 5.0 * 2 ** (attempt - 1)
        waits = [delivery.backoff(attempt, Action.RETRY, rng).total_seconds() for _ in range(200)]
        assert nominal / 2 <= min(waits) and max(waits) <= nominal
        assert max(waits) - min(waits) > nominal / 4  # spread out, not in lockstep
    assert delivery.backoff(30, Action.SLOW_RETRY, rng) <= delivery.MAX_BACKOFF
    assert delivery.backoff(1, Action.SLOW_RETRY, rng) >= timedelta(seconds=30)


def test_retryable_until_max_attempts() -> None:
    failure = delivery.classify_code(20429, 429)
    assert delivery.retryable(failure, delivery.MAX_ATTEMPTS - 1)
    assert not delivery.retryable(failure, delivery.MAX_ATTEMPTS)
    assert not delivery.retryable(delivery.classify_code(21211, 400), 1)


def who(**kw: object) -> delivery.Recipient:
    values: dict[str, object] = {"phone": "+16175550101", "language": "en"}
    values.update(kw)
    return delivery.Recipient(**values)  # type: ignore[arg-type]


def plan(channel: str, r: delivery.Recipient, purpose: str | None = "checkin",
         **kw: object) -> delivery.Plan | delivery.Undeliverable:
    return delivery.plan(channel, "How are you?", r, purpose=purpose, now=NOW,
                         templates=REGISTRY, template_values=VALUES, **kw)  # type: ignore[arg-type]


def test_sms_goes_as_it_is() -> None:
    assert plan("sms", who()) == delivery.Plan("sms", "+16175550101", "How are you?")


def test_whatsapp_window() -> None:
    inside = plan("whatsapp", who(last_inbound_at=NOW - timedelta(hours=23, minutes=59)))
    assert inside == delivery.Plan("whatsapp", "whatsapp:+16175550101", "How are you?")
    outside = plan("whatsapp", who(last_inbound_at=NOW - timedelta(hours=24)))
    assert isinstance(outside, delivery.Plan)
    assert (outside.content_sid, outside.body, outside.fallback) == ("HX" + "a" * 32, None,
                                                                     "template")
    assert outside.content_variables == '{"1": "HeartStudy"}'
    closed = plan("whatsapp", who(last_inbound_at=NOW, whatsapp_window_closed=True))
    assert isinstance(closed, delivery.Plan) and closed.content_sid


def test_template_language_and_default_purpose() -> None:
    regional = plan("whatsapp", who(language="es-MX"))
    assert isinstance(regional, delivery.Plan) and regional.content_sid == "HX" + "b" * 32
    by_primary = plan("whatsapp", who(language="es"))
    assert isinstance(by_primary, delivery.Plan) and by_primary.channel == "sms"  # no "es"
    french = plan("whatsapp", who(language="fr"), purpose="visit_reminder")
    assert isinstance(french, delivery.Plan) and french.content_sid == "HX" + "c" * 32
    assert french.content_variables == '{"1": "How are you?"}'


def test_fallbacks() -> None:
    sms = plan("whatsapp", who(language="sw"))
    assert sms == delivery.Plan("sms", "+16175550101", "How are you?", fallback="sms_fallback")
    nothing = plan("whatsapp", who(language="sw", sms_consent=False))
    assert isinstance(nothing, delivery.Undeliverable)
    assert "no template for checkin/sw" in nothing.reason
    no_sender = plan("whatsapp", who(last_inbound_at=NOW), whatsapp_ready=False)
    assert isinstance(no_sender, delivery.Plan) and no_sender.channel == "sms"
    assert isinstance(plan("sms", who(phone=None)), delivery.Undeliverable)


def test_an_urgent_text_goes_by_sms_rather_than_a_template_that_hides_it() -> None:
    hidden = plan("whatsapp", who(), urgent=True)  # the "checkin"/en template has no {body}
    assert hidden == delivery.Plan("sms", "+16175550101", "How are you?",
                                   fallback="sms_fallback")
    no_sms = plan("whatsapp", who(sms_consent=False), urgent=True)
    assert isinstance(no_sms, delivery.Plan) and no_sms.content_sid == "HX" + "a" * 32
    assert no_sms.withheld
    shown = plan("whatsapp", who(language="fr"), purpose="safety", urgent=True)
    assert isinstance(shown, delivery.Plan) and shown.content_sid == "HX" + "c" * 32
    assert not shown.withheld
    routine = plan("whatsapp", who())
    assert isinstance(routine, delivery.Plan) and routine.content_sid == "HX" + "a" * 32


def test_staff_get_free_form_whatsapp_first() -> None:
    staff = plan("whatsapp", who(window_known=False))
    assert isinstance(staff, delivery.Plan) and staff.body == "How are you?"


def test_senders_and_rate_limits() -> None:
    s = Settings(sms_from="+15005550006", whatsapp_from="+14155238886")
    sms = delivery.sender_for(s, "sms")
    assert sms is not None and (sms.from_, sms.kind, sms.key) == (
        "+15005550006", "long_code", "+15005550006")
    wa = delivery.sender_for(s, "whatsapp")
    assert wa is not None and (wa.from_, wa.kind) == ("whatsapp:+14155238886", "whatsapp")
    assert delivery.sender_for(replace(s, whatsapp_from=None), "whatsapp") is None
    service = delivery.sender_for(replace(s, messaging_service_sid="MG" + "1" * 32), "sms")
    assert service is not None and service.from_ is None and service.messaging_service_sid

    limits = delivery.rate_limits(s)
    assert limits is not None and limits["long_code"].rate_per_s == 1
    assert delivery.rate_limits(replace(s, send_rate_limit="off")) is None
    custom = delivery.rate_limits(replace(s, send_rate_limit="100:20"))
    assert custom is not None and custom["whatsapp"].rate_per_s == 100
    assert custom["whatsapp"].burst == 20 and custom["whatsapp"].per_message
    with pytest.raises(delivery.RateConfigError):
        delivery.rate_limits(replace(s, send_rate_limit="fast"))
    with pytest.raises(delivery.RateConfigError):
        delivery.rate_limits(replace(s, sms_sender_kind="pigeon"))


def test_templates_file_errors_name_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("checkin:\n  en: {content_sid: HX" + "a" * 32 + ", colour: red}\n")
    with pytest.raises(templates.TemplateError, match=r"checkin`\.en: unknown keys"):
        templates.load(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(templates.TemplateError, match="purposes at the top level"):
        templates.load(bad)
    with pytest.raises(templates.TemplateError, match="cannot be read"):
        templates.load(tmp_path / "missing.yaml")
    assert len(templates.registry_for(None)) == 0
