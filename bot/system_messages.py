"""The bot's own participant-facing messages (source language English).

Each is translated with msgctxt `system:<key>` through the same gettext catalogs as the
flows, so the babel extractor must read this table as well as `bot/engine/system_texts.py`.
None of them names the study or the condition: a phone may be read by someone else.
"""

from __future__ import annotations

import functools

from . import logs
from .engine.localizer import Localizer, SourceLocalizer
from .i18n import CatalogMissing, localizer, negotiate

SYSTEM_MESSAGES: dict[str, str] = {
    "stop_confirmed": "You will not get any more messages from us. "
                      "If you change your mind, reply START.",
    "start_confirmed": "Thank you. You will get our messages again. "
                       "Reply STOP at any time to stop them.",
    "help": "For help, contact your study team: {contact}. "
            "Reply STOP to stop messages, START to get them again.",
    "unknown_sender": "Sorry, we cannot answer messages sent from this number.",
    "no_open_question": "Thank you for your message. There is no question waiting for "
                        "an answer right now. Reply HELP if you need help.",
    "language_changed": "OK. From now on we will write to you in this language.",
    # Sent at once after an urgent symptom or an alarming message (bot/escalation.py).
    "safety": "If you need help right now, call {emergency} or go to the nearest emergency "
              "room. We have told your study nurse, who will contact you soon.",
}

_log = logs.get_logger("i18n")


@functools.lru_cache(maxsize=64)
def catalogs_with_fallback(language: str, default: str) -> Localizer:
    """The participant's language, else the study default, else the source text.

    A missing catalog is reported (once per language) rather than failing the webhook: a
    participant must still get a reply, and `bot translations check` is where it is an error.
    """
    for lang in (negotiate(language, default), negotiate(default)):
        try:
            return localizer(lang)
        except CatalogMissing:
            logs.event(_log, "catalog_missing", level=30, language=lang)
    return SourceLocalizer("en")


def context(key: str) -> str:
    return f"system:{key}"


def text(key: str, language: str, default_language: str = "en", **params: str) -> str:
    """The message `key` in `language`, with `{name}` placeholders filled from `params`."""
    loc = catalogs_with_fallback(language, default_language)
    out = loc.translate(context(key), SYSTEM_MESSAGES[key])
    for name, value in params.items():
        out = out.replace("{" + name + "}", value)
    return out
