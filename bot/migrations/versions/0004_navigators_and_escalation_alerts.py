"""navigators, on-call windows and escalation alerts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 02:20:21.722356
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - for sqlmodel types a model may add
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "navigator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("language", sa.String(length=12), nullable=False),
        sa.Column("channels", sa.String(length=40), nullable=False),
        sa.Column("coordinator", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_navigator")),
        sa.UniqueConstraint("name", name=op.f("uq_navigator_name")),
    )
    with op.batch_alter_table("navigator", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_navigator_phone"), ["phone"], unique=True)

    op.create_table(
        "oncall_window",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("navigator_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("days", sa.String(length=40), nullable=False),
        sa.Column("start", sa.String(length=5), nullable=False),
        sa.Column("end", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["navigator_id"], ["navigator.id"], name=op.f("fk_oncall_window_navigator_id_navigator")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_window")),
    )
    with op.batch_alter_table("oncall_window", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oncall_window_navigator_id"), ["navigator_id"], unique=False
        )

    op.create_table(
        "escalation_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("navigator_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalation.id"],
            name=op.f("fk_escalation_alert_escalation_id_escalation"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_escalation_alert_message_id_message")
        ),
        sa.ForeignKeyConstraint(
            ["navigator_id"],
            ["navigator.id"],
            name=op.f("fk_escalation_alert_navigator_id_navigator"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_alert")),
        sa.UniqueConstraint(
            "escalation_id",
            "level",
            "navigator_id",
            "channel",
            name=op.f("uq_escalation_alert_escalation_id_level_navigator_id_channel"),
        ),
    )
    with op.batch_alter_table("escalation_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escalation_alert_due_at"), ["due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_escalation_alert_escalation_id"), ["escalation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_escalation_alert_navigator_id"), ["navigator_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_escalation_alert_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("escalation_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_alert_status"))
        batch_op.drop_index(batch_op.f("ix_escalation_alert_navigator_id"))
        batch_op.drop_index(batch_op.f("ix_escalation_alert_escalation_id"))
        batch_op.drop_index(batch_op.f("ix_escalation_alert_due_at"))

    op.drop_table("escalation_alert")
    with op.batch_alter_table("oncall_window", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oncall_window_navigator_id"))

    op.drop_table("oncall_window")
    with op.batch_alter_table("navigator", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_navigator_phone"))

    op.drop_table("navigator")
