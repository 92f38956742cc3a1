"""The engine's own participant-facing strings (source language English).

Each is translated with msgctxt `system:<key>`; the babel extractor reads this table.
"""

from __future__ import annotations

SYSTEM_TEXTS: dict[str, str] = {
    "hint.yes_no": "Please reply YES or NO.",
    "hint.number": "Please reply with a number from {min} to {max}.",
    "hint.number_any": "Please reply with a number.",
    "hint.choice": "Please reply with the number of one option.",
    "hint.multi_choice": (
        "Please reply with the numbers of all options that apply, for example: 1, 3."
    ),
    "hint.date": "Please write a date, for example: tomorrow or Tuesday.",
    "hint.datetime": "Please write a day and time, for example: tomorrow at 3pm.",
    "hint.text": "Please write your answer in a message.",
    "confirm.when": "{when}. Is that right? Please reply YES or NO.",
    "confirm.again": "OK. Please write the day and time again.",
}


def system_context(key: str) -> str:
    return f"system:{key}"
