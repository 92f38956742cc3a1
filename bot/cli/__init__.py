"""The `bot` command. Each sub-command lives in its own module beside this one."""

from __future__ import annotations

from .groups import main

# Importing the modules registers their commands on the groups.
from . import chat, emulator, flows_check, flows_test, run, simulate, translations  # noqa: E402,F401

__all__ = ["main"]
