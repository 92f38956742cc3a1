"""Understanding free-text replies, per language.

Every function here is pure: it takes the reply text, the participant's language and (for
dates) the participant-local ``now``; it never reads the clock or the network. Words per
language live in ``translations/words/<lang>.yaml`` so translators can edit them.

Public interface (used by the engine; keep signatures stable):

- ``parse_yes_no(text, lang) -> bool | None``
- ``parse_number(text, lang, minimum=None, maximum=None) -> int | None``
- ``parse_choice(text, lang, choices) -> str | None``   (choices: sequence of ``Choice``)
- ``parse_multi_choice(text, lang, choices) -> list[str] | None``
- ``parse_datetime(text, lang, now) -> datetime | None``  (``now`` aware, participant-local)
- ``parse_when(text, lang, now) -> When | None``  (``.at`` aware, ``.has_time``)
- ``warm_up(langs)``   (load date words and dateparser data at boot)
- ``detect_keyword(text, lang) -> Keyword | None``   (stop / start / help / language switch)
"""

from .choice import parse_choice, parse_multi_choice
from .dates import When, parse_datetime, parse_when, warm_up
from .keywords import detect_keyword
from .numbers import parse_number
from .types import Choice, Keyword
from .yesno import parse_yes_no

__all__ = [
    "Choice",
    "Keyword",
    "When",
    "detect_keyword",
    "parse_choice",
    "parse_datetime",
    "parse_multi_choice",
    "parse_number",
    "parse_when",
    "parse_yes_no",
    "warm_up",
]
