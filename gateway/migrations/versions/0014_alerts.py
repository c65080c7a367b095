"""alerts: misuse alerts raised from the audit log by the policy's alert rules

Revision ID: 0014_alerts
Revises: 0012_signal_hardening
Create Date: 2026-11-30 02:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_alerts"
down_revision: str | None = "0013_verification_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(
        "ix_alerts_rule_actor_raised", "alerts", ["rule_id", "actor_id", "raised_at"], unique=False
    )
    op.create_index("ix_alerts_raised_at", "alerts", ["raised_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alerts_raised_at", table_name="alerts")
    op.drop_index("ix_alerts_rule_actor_raised", table_name="alerts")
    op.drop_table("alerts")
