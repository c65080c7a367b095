"""match state: a tier and a review state on every match, a tier on every member

Revision ID: 0017_match_state
Revises: 0012_signal_hardening
Create Date: 2026-11-30 02:40:00

Matches form on typo-tolerant key families now: each pair is scored
(`gateway.matching.scoring`) and placed in a tier, `strong` or `possible`. A member
keeps the best tier by which it joined; a match is `strong` only when all its members
are. The coordinator reviews a match: `new`, `under-review`, `confirmed` or `dismissed`
(with a reason code, never free text). Matches made before this revision were formed
on an exact BSN or name + date of birth: they are `strong`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_match_state"
down_revision: str | None = "0016_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.add_column(
            sa.Column("tier", sa.String(length=16), nullable=False, server_default="strong")
        )
        batch.add_column(
            sa.Column("state", sa.String(length=16), nullable=False, server_default="new")
        )
        batch.add_column(sa.Column("state_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint(
            op.f("ck_matches_state"), "state IN ('new', 'under-review', 'confirmed', 'dismissed')"
        )
        batch.create_check_constraint(op.f("ck_matches_tier"), "tier IN ('strong', 'possible')")
    with op.batch_alter_table("match_members") as batch:
        batch.add_column(
            sa.Column("tier", sa.String(length=16), nullable=False, server_default="strong")
        )


def downgrade() -> None:
    with op.batch_alter_table("match_members") as batch:
        batch.drop_column("tier")
    with op.batch_alter_table("matches") as batch:
        batch.drop_constraint(op.f("ck_matches_tier"), type_="check")
        batch.drop_constraint(op.f("ck_matches_state"), type_="check")
        batch.drop_column("state_changed_at")
        batch.drop_column("state_reason")
        batch.drop_column("state")
        batch.drop_column("tier")
