"""Consent: STOP, START, HELP and language keywords, wherever they come from.

The bot keeps its own consent record across numbers and channels. An opt-out takes effect
at once: one confirmation (never a second one for a repeated STOP), pending outbound messages
cancelled, and no message of any kind afterwards until the participant sends START.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from . import participants, system_messages
from .engine.languages import SUPPORTED, primary
from .store.models import Participant

OPTED_IN = "opted_in"
OPTED_OUT = "opted_out"
#: Outbound rows not yet handed to Twilio: an opt-out must stop them.


@dataclass(slots=True)
class KeywordResult:
    """What a keyword changed and what (if anything) to say back."""

    replies: list[tuple[str, str]] = field(default_factory=list)  # (system key, text)
    changed: bool = False


def actor(p: Participant) -> str:
    return f"participant:{p.code}"


def may_message(p: Participant) -> bool:
    """Whether anything at all may be sent to `p` (the stop confirmation is the one exception)."""
    return p.consent != OPTED_OUT and p.erased_at is None


def cancel_pending(db: Session, participant_id: int, now: datetime) -> int:
    """Cancel outbound messages that have not left for Twilio yet; returns how many.

    One rule with the outbox's own (`bot.outbox.cancel_pending`): a row Twilio has accepted
    (it has a SID) keeps its status, because Twilio may still deliver it and its callback
    must find the truth. Imported here: the outbox builds on this module.
    """
    from .outbox import cancel_pending as cancel_unsent

    return cancel_unsent(db, participant_id, "participant opted out", now)


def opt_out(db: Session, p: Participant, *, source: str, actor_name: str, now: datetime,
            message_id: int | None = None) -> bool:
    """Opt `p` out; False when they already were (so no second confirmation goes out)."""
    assert p.id is not None
    changed = participants.set_consent(db, p, OPTED_OUT, source=source, actor=actor_name,
                                       message_id=message_id)
    # Cancel even when already opted out: a nudge may have been queued by a racing worker.
    cancel_pending(db, p.id, now)
    # Scheduled check-ins, reminders and re-prompts too. Imported here because the nudges
    # module builds on the conversation shell, which imports this one.
    from .nudges import cancel_pending_nudges

    cancel_pending_nudges(db, p.id, now)
    return changed


def opt_in(db: Session, p: Participant, *, source: str, actor_name: str,
           message_id: int | None = None) -> bool:
    return participants.set_consent(db, p, OPTED_IN, source=source, actor=actor_name,
                                    message_id=message_id)


def _say(result: KeywordResult, key: str, p: Participant, default_language: str,
         **params: str) -> None:
    result.replies.append((key, system_messages.text(key, p.language, default_language,
                                                     **params)))


def apply_keyword(db: Session, p: Participant, kind: str, language: str | None, *,
                  now: datetime, message_id: int | None, contact: str,
                  default_language: str, announce_language: bool = True) -> KeywordResult:
    """Enforce a keyword the participant sent (detected by the engine or by the shell)."""
    result = KeywordResult()
    who = actor(p)
    if kind == "stop":
        result.changed = opt_out(db, p, source="keyword", actor_name=who, now=now,
                                 message_id=message_id)
        if result.changed:
            _say(result, "stop_confirmed", p, default_language)
        return result
    if kind == "start":
        result.changed = opt_in(db, p, source="keyword", actor_name=who, message_id=message_id)
        _say(result, "start_confirmed", p, default_language)
        return result
    if not may_message(p):
        return result  # opted out: HELP and language switches get no reply either
    if kind == "help":
        _say(result, "help", p, default_language, contact=contact)
        return result
    if kind == "language" and language:
        lang = primary(language)
        if lang in SUPPORTED:
            result.changed = participants.update(db, p, actor=who, action="participant.language",
                                                 language=lang)
            if announce_language:
                _say(result, "language_changed", p, default_language)
    return result


def apply_advanced_opt_out(db: Session, p: Participant, opt_out_type: str, *, now: datetime,
                           message_id: int | None) -> bool:
    """Twilio Advanced Opt-Out already answered the participant: record, send nothing."""
    if opt_out_type == "STOP":
        return opt_out(db, p, source="twilio_opt_out", actor_name=actor(p), now=now,
                       message_id=message_id)
    if opt_out_type == "START":
        return opt_in(db, p, source="twilio_opt_out", actor_name=actor(p),
                      message_id=message_id)
    return False  # HELP: Twilio sent the help text; nothing changes

