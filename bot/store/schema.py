"""The database schema, driven by the Alembic migrations in `bot/migrations`.

`upgrade(url)` is cheap when the database is already current, so the app, the workers and
the CLI call it at every start. Alembic is configured in code (no alembic.ini), so this works
from any directory and from an installed package.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from .db import SQLITE_BUSY_TIMEOUT_MS, normalise_url

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Numbered revisions ("0003_add_visit_notes.py") read in order; %% escapes configparser.
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if importlib.util.find_spec("ruff") is not None:
        # New revisions come out in the project's style (autogenerate ignores line length).
        cfg.set_section_option("post_write_hooks", "hooks", "ruff_fix,ruff_format")
        cfg.set_section_option("post_write_hooks", "ruff_fix.type", "module")
        cfg.set_section_option("post_write_hooks", "ruff_fix.module", "ruff")
        cfg.set_section_option("post_write_hooks", "ruff_fix.options",
                               "check --fix --quiet --select I,F401 REVISION_SCRIPT_FILENAME")
        cfg.set_section_option("post_write_hooks", "ruff_format.type", "module")
        cfg.set_section_option("post_write_hooks", "ruff_format.module", "ruff")
        cfg.set_section_option("post_write_hooks", "ruff_format.options",
                               "format --quiet REVISION_SCRIPT_FILENAME")
    return cfg


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Unlike the app's engine, foreign keys stay OFF: batch migrations copy a table, drop the
    # original and rename the copy, and with foreign keys on, the drop would hit child rows.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


@contextmanager
def _connection(url: str) -> Iterator[sa.Connection]:
    """A short-lived connection of its own, closed afterwards (no pool left behind)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, poolclass=NullPool,
                                  connect_args={"isolation_level": None,
                                                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        sa.event.listen(engine, "connect", _sqlite_connect)
        # Taking the write lock at BEGIN makes concurrent upgraders queue, then find it done.
        sa.event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(url: str) -> tuple[str, ...]:
    """The revision(s) the database is at; empty for a database never migrated."""
    with _connection(url) as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
        conn.rollback()
    return tuple(heads)


def upgrade(url: str, revision: str = "head") -> bool:
    """Bring the database up to `revision`; returns False when there was nothing to do."""
    if revision == "head" and current(url) == (head(),):
        return False
    cfg = alembic_config()
    with _connection(url) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return True


def downgrade(url: str, revision: str) -> None:
    cfg = alembic_config()
    with _connection(url) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def differences(url: str) -> list[Any]:
    """What autogenerate would put in a new migration: empty when models and database agree."""
    from sqlmodel import SQLModel

    from . import models  # noqa: F401 - registers the tables

    with _connection(url) as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "render_as_batch": True})
        diffs = compare_metadata(ctx, SQLModel.metadata)
        conn.rollback()
    return list(diffs)


def new_revision(message: str) -> Path | None:
    """Autogenerate a migration for model changes (run in a source checkout).

    Compares the models against a scratch SQLite database at head, so it needs no server.
    Returns None when the models match the migrations.
    """
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'scratch.db'}"
        upgrade(url)
        if not differences(url):
            return None
        current_head = head()
        number = int(current_head.split("_", 1)[0]) + 1 if current_head else 1
        cfg = alembic_config()
        with _connection(url) as conn:
            cfg.attributes["connection"] = conn
            script = command.revision(cfg, message=message, autogenerate=True,
                                      rev_id=f"{number:04d}")
    if script is None or isinstance(script, list):
        return None
    return Path(script.path)
