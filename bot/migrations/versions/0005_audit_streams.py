"""audit streams: one hash chain per participant plus one for the rest

Existing entries keep their hashes: the one chain they form becomes the `system` stream, and
the existing head becomes that stream's head, so `bot audit verify` passes before and after.
New entries about a participant start that participant's own stream.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 02:27:05.612186
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - for sqlmodel types a model may add
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYSTEM = "system"


def _old_head() -> sa.TableClause:
    return sa.table("audit_head", sa.column("id", sa.Integer()), sa.column("hash", sa.String()),
                    sa.column("entries", sa.Integer()),
                    sa.column("updated_at", sa.DateTime(timezone=True)))


def _new_head() -> sa.TableClause:
    return sa.table("audit_head", sa.column("stream", sa.String()),
                    sa.column("hash", sa.String()), sa.column("entries", sa.Integer()),
                    sa.column("updated_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stream", sa.String(length=64), nullable=False, server_default=SYSTEM)
        )

    # The head's key changes from the constant 1 to the stream: rebuild the one-row table.
    bind = op.get_bind()
    old = _old_head()
    rows = bind.execute(sa.select(old.c.hash, old.c.entries, old.c.updated_at)).all()
    op.drop_table("audit_head")
    op.create_table(
        "audit_head",
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_audit_head")),
    )
    if rows:
        op.bulk_insert(_new_head(), [{"stream": SYSTEM, "hash": r.hash, "entries": r.entries,
                                      "updated_at": r.updated_at} for r in rows[:1]])


def downgrade() -> None:
    bind = op.get_bind()
    others = bind.execute(sa.text(
        "SELECT COUNT(*) FROM audit_entry WHERE stream <> :s"), {"s": SYSTEM}).scalar_one()
    if others:
        # They chain per participant; as one chain they would read as tampering.
        raise RuntimeError(f"{others} audit entries are in participant streams, which the "
                           "previous schema cannot verify; not downgrading")
    new = _new_head()
    rows = bind.execute(sa.select(new.c.hash, new.c.entries, new.c.updated_at)
                        .where(new.c.stream == SYSTEM)).all()
    op.drop_table("audit_head")
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    if rows:
        op.bulk_insert(_old_head(), [{"id": 1, "hash": r.hash, "entries": r.entries,
                                      "updated_at": r.updated_at} for r in rows])

    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_column("stream")
