"""A local stand-in for Twilio's Messages API, and a participant's phone for the terminal.

`bot emulator` serves the REST API the `twilio` client calls (create, fetch, list messages),
sends signed status callbacks, fails chosen sends with Twilio's error codes, and plays
Twilio towards the bot's webhook for messages typed with `bot chat`. See README.md here.
"""

from __future__ import annotations

from .client import EmulatorHttpClient, client_from_settings, twilio_client
from .core import Emulator, EmulatorConfig
from .rules import Rule
from .server import EmulatorServer

__all__ = [
    "Emulator",
    "EmulatorConfig",
    "EmulatorHttpClient",
    "EmulatorServer",
    "Rule",
    "client_from_settings",
    "twilio_client",
]
