"""pseudonym rotation: the state of `ketenpoort keys rotate pseudonym`

Revision ID: 0018_pseudonym_rotation
Revises: 0017_match_state
Create Date: 2026-11-30 03:35:00

A rotation multiplies every stored pseudonym by `k'·k⁻¹` in batches; each pseudonym row
names the key it is under (`key_id`, now indexed so the rows still to move are found
by an index seek), and a `pseudonym_rotations` row says a rotation is under way, so the
matching processor waits until it is finished and a crashed rotation can be resumed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_pseudonym_rotation"
down_revision: str | None = "0017_match_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pseudonym_rotations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("to_kid", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pseudonym_rotations")),
    )
    op.create_index("ix_signal_pseudonyms_key_id", "signal_pseudonyms", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_signal_pseudonyms_key_id", table_name="signal_pseudonyms")
    op.drop_table("pseudonym_rotations")
