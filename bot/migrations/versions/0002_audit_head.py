"""The audit chain head: newest hash and entry count, so deleting the newest entries shows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 01:32:48.711333
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # Start the head from the chain as it stands; an empty chain gets its head on first write.
    bind = op.get_bind()
    count = bind.execute(sa.text("SELECT COUNT(*) FROM audit_entry")).scalar_one()
    if count:
        last = bind.execute(
            sa.text("SELECT hash FROM audit_entry ORDER BY id DESC LIMIT 1")
        ).scalar_one()
        op.bulk_insert(
            head, [{"id": 1, "hash": last, "entries": count, "updated_at": datetime.now(UTC)}]
        )


def downgrade() -> None:
    op.drop_table("audit_head")
