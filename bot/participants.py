"""Participant records: every change goes through here so it is audited."""

from __future__ import annotations

import json
from typing import Any

import phonenumbers
from sqlmodel import Session, select

from . import audit
from .store.models import ConsentChange, Participant
from .store.types import utcnow

AUDITED_FIELDS = ("phone", "channel", "sms_consent", "language", "timezone", "consent",
                  "checkin_time", "fields_json", "whatsapp_window_closed")


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
    return {name: getattr(p, name) for name in AUDITED_FIELDS}


def for_audit(values: dict[str, Any]) -> dict[str, Any]:
    """The audit trail is permanent and outlives erasure, so it gets masked numbers only."""
    if values.get("phone"):
        return {**values, "phone": mask_phone(values["phone"])}
    return values


def find_by_phone(session: Session, phone: str) -> Participant | None:
    return session.exec(select(Participant).where(Participant.phone == phone)).first()


def fields(p: Participant) -> dict[str, Any]:
    data = json.loads(p.fields_json or "{}")
    return data if isinstance(data, dict) else {}


def add(session: Session, *, actor: str, phone: str, code: str, language: str = "en",
        timezone: str = "UTC", channel: str = "sms", checkin_time: str | None = None,
        consent: str = "opted_in", extra: dict[str, Any] | None = None) -> Participant:
    p = Participant(code=code, phone=phone, language=language, timezone=timezone,
                    channel=channel, checkin_time=checkin_time, consent=consent,
                    fields_json=json.dumps(extra or {}, sort_keys=True))
    session.add(p)
    session.flush()
    assert p.id is not None  # assigned by the flush
    audit.record(session, actor=actor, action="participant.add", entity="participant",
                 entity_id=p.id, new=for_audit(snapshot(p)))
    session.add(ConsentChange(participant_id=p.id, state=consent, source="enrolment"))
    return p


def update(session: Session, p: Participant, *, actor: str, action: str = "participant.update",
           **changes: Any) -> bool:
    """Apply `changes` (column names, or `fields` for a dict merged into the extra fields)."""
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
    audit.record(session, actor=actor, action=action, entity="participant", entity_id=p.id,
                 old=for_audit(old), new=for_audit(new))
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
