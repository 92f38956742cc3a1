"""whatsapp withheld texts: a text sent as a template that does not show it waits for the
participant's next message

`message.withheld_at` / `withheld_outcome` record that a row's text was held back and what
became of it; `participant.whatsapp_withheld` tells the webhook, from the row it locks
anyway, that there is something to deliver. Existing rows have nothing withheld.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 05:06:39.578577
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - for sqlmodel types a model may add
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withheld_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withheld_outcome", sa.String(length=12), nullable=True))

    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("whatsapp_withheld", sa.Boolean(), nullable=False,
                      server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_column("whatsapp_withheld")

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("withheld_outcome")
        batch_op.drop_column("withheld_at")
