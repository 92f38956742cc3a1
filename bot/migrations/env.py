"""Alembic environment. Run through `bot.store.schema` (or `bot db ...`), which hands over an
open connection in `config.attributes["connection"]`; there is no alembic.ini."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import bot.store.models  # noqa: F401 - registers every table on SQLModel.metadata
from bot.store.types import UTCDateTime

#: Held for the whole upgrade so several processes starting at once migrate one at a time.
PG_MIGRATION_LOCK = 0x7A11B08

target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Keep migrations independent of application code: the stored type is all that matters.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def run_migrations_online() -> None:
    connection: sa.Connection | None = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through bot.store.schema or `bot db upgrade`")
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,  # SQLite can't ALTER most things: copy-and-move tables
        render_item=render_item,
        compare_type=True,
        # SQLite DDL is transactional too; one transaction means a failed upgrade leaves nothing.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                               {"k": PG_MIGRATION_LOCK})
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported")
run_migrations_online()
