"""Running `bot` commands against the test database, and conversations that record answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot import conversation, participants
from bot.cli import main
from bot.config import Settings
from bot.flow_registry import FlowRegistry
from bot.store.db import session_scope
from bot.twilio_io import Inbound

Cli = Callable[..., Result]
#: Enrols a participant and has them answer the intake flow; returns their id.
Converse = Callable[..., int]

#: A free-text answer kept as an extra field, and a protocol answer.
INTAKE = """\
spec: 1
id: intake
version: 1
name: Intake
steps:
  - id: name
    ask: What should we call you?
    answer: text
  - id: keep_name
    set:
      first_name: answer
  - id: pain
    ask: How bad is the pain, from 0 to 10?
    answer:
      type: number
      min: 0
      max: 10
  - id: done
    end: completed
    send: Thank you.
"""
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def cli(settings: Settings) -> Cli:
    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, [*args], obj=settings, input=input,
                                  catch_exceptions=False)
    return run


@pytest.fixture
def converse(settings: Settings, tmp_path: Path) -> Converse:
    (tmp_path / "intake.yaml").write_text(INTAKE)
    registry = FlowRegistry(tmp_path)

    def run(code: str, phone: str, *replies: str, extra: dict[str, Any] | None = None) -> int:
        with session_scope(settings.database_url) as db:
            p = participants.add(db, actor="staff:test", phone=phone, code=code, extra=extra,
                                 secret_key=settings.secret_key)
            conversation.start_flow(db, p, "intake", NOW, settings=settings,
                                    registry=registry)
            assert p.id is not None
            pid = p.id
        for body in replies:
            inbound = Inbound(sid="SM" + uuid.uuid4().hex, phone=phone, channel="sms",
                              to=settings.sms_from, body=body, opt_out_type=None, num_media=0)
            with session_scope(settings.database_url) as db:
                conversation.handle_inbound(db, inbound, settings=settings, registry=registry,
                                            now=NOW)
        return pid
    return run
