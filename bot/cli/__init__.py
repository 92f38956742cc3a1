"""The `bot` command. Each sub-command lives in its own module beside this one."""

from __future__ import annotations

# Importing the modules registers their commands on the groups.
from . import (  # noqa: F401
    audit,
    chat,
    db,
    emulator,
    escalations,
    flows_check,
    flows_test,
    navigators,
    outbox,
    participants,
    run,
    scheduler,
    simulate,
    translations,
    visits,
    worker,
)
from .groups import main

__all__ = ["main"]
