"""matching outbox: matching runs after the request's commit (timing side channel)

Revision ID: 0010_matching_outbox
Revises: 0009_cases
Create Date: 2026-11-29 23:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_matching_outbox"
down_revision: str | None = "0009_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matching_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "signal_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subjects", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_pk"],
            ["signals.pk"],
            name=op.f("fk_matching_outbox_signal_pk_signals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matching_outbox")),
        sa.UniqueConstraint("signal_pk", "event", name=op.f("uq_matching_outbox_signal_pk_event")),
    )


def downgrade() -> None:
    op.drop_table("matching_outbox")
