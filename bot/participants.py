"""Participant records: every change goes through here so it is audited."""

from __future__ import annotations

import json
from typing import Any

import phonenumbers
from sqlmodel import Session, select

from . import audit
from .config import Settings
from .store.models import ConsentChange, Participant
from .store.types import utcnow

#: Columns the trail follows; with them `fields`, the extra fields (see `for_audit`).
AUDITED_FIELDS = ("phone", "channel", "sms_consent", "language", "timezone", "consent",
                  "checkin_time", "whatsapp_window_closed")


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """E.164 from what people type ("+1 (555) 010-2030", "whatsapp:+44..."), or InvalidPhone."""
    text = raw.strip()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:"):]
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str | None) -> str:
    """For logs and screens: keep the country code and the last two digits."""
    if not phone:
        return "-"
    digits = phone.removeprefix("whatsapp:")
    return digits[:3] + "*" * max(len(digits) - 5, 0) + digits[-2:]


def snapshot(p: Participant) -> dict[str, Any]:
    """What the trail follows of `p`, the extra fields decoded (`fields`)."""
    return {**{name: getattr(p, name) for name in AUDITED_FIELDS}, "fields": fields(p)}


def for_audit(p: Participant, values: dict[str, Any], secret_key: str | None = None
              ) -> dict[str, Any]:
    """`values` (from `snapshot`) as the trail may hold them: it is permanent and outlives
    erasure, so the phone goes in masked and each extra field (which may hold a name) as a
    keyed digest (`audit.value_hmac`); language, time zone, channel, consent and check-in
    time identify no one and go in as they are.

    `secret_key`: the settings' SECRET_KEY; without it, the one in the environment, which
    every process of a deployment shares (a flow's `set:` comes here without settings).
    """
    out = dict(values)
    if out.get("phone"):
        out["phone"] = mask_phone(out["phone"])
    extra = out.get("fields")
    if extra:
        key = secret_key if secret_key is not None else Settings.from_env().secret_key
        out["fields"] = {name: audit.value_hmac(key, field_about(p.id, name), value)
                         for name, value in extra.items()}
    return out


def field_about(participant_id: Any, name: str) -> str:
    """The place an extra field's digest names (`audit.value_hmac`)."""
    return f"participant:{participant_id}/{name}"


def find_by_phone(session: Session, phone: str) -> Participant | None:
    return session.exec(select(Participant).where(Participant.phone == phone)).first()


def fields(p: Participant) -> dict[str, Any]:
    data = json.loads(p.fields_json or "{}")
    return data if isinstance(data, dict) else {}


def add(session: Session, *, actor: str, phone: str, code: str, language: str = "en",
        timezone: str = "UTC", channel: str = "sms", checkin_time: str | None = None,
        consent: str = "opted_in", extra: dict[str, Any] | None = None,
        secret_key: str | None = None) -> Participant:
    p = Participant(code=code, phone=phone, language=language, timezone=timezone,
                    channel=channel, checkin_time=checkin_time, consent=consent,
                    fields_json=json.dumps(extra or {}, sort_keys=True))
    session.add(p)
    session.flush()
    assert p.id is not None  # assigned by the flush
    audit.record(session, actor=actor, action="participant.add", entity="participant",
                 entity_id=p.id, new=for_audit(p, snapshot(p), secret_key))
    session.add(ConsentChange(participant_id=p.id, state=consent, source="enrolment"))
    return p


def update(session: Session, p: Participant, *, actor: str, action: str = "participant.update",
           secret_key: str | None = None, **changes: Any) -> bool:
    """Apply `changes` (column names, or `fields` for a dict merged into the extra fields).

    The entry names what changed; of the extra fields only those that changed, as digests.
    """
    before = snapshot(p)
    if "fields" in changes:
        merged = fields(p)
        merged.update(changes.pop("fields"))
        changes["fields_json"] = json.dumps(merged, sort_keys=True, ensure_ascii=False)
    for name, value in changes.items():
        setattr(p, name, value)
    after = snapshot(p)
    if before == after:
        return False
    p.updated_at = utcnow()
    session.add(p)
    old = {k: v for k, v in before.items() if before[k] != after[k]}
    new = {k: v for k, v in after.items() if before[k] != after[k]}
    if "fields" in new:  # of the extra fields, only those that changed
        was, now = old["fields"], new["fields"]
        changed = {k for k in was.keys() | now.keys()
                   if k not in was or k not in now or was[k] != now[k]}
        old["fields"] = {k: v for k, v in was.items() if k in changed}
        new["fields"] = {k: v for k, v in now.items() if k in changed}
    audit.record(session, actor=actor, action=action, entity="participant", entity_id=p.id,
                 old=for_audit(p, old, secret_key), new=for_audit(p, new, secret_key))
    return True


def set_consent(session: Session, p: Participant, state: str, *, source: str, actor: str,
                message_id: int | None = None) -> bool:
    """Record a consent change; returns False when the participant was already in `state`."""
    if p.consent == state:
        return False
    update(session, p, actor=actor, action=f"consent.{state}", consent=state)
    assert p.id is not None
    session.add(ConsentChange(participant_id=p.id, state=state, source=source,
                              message_id=message_id))
    return True
