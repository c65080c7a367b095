"""alert handling: a privacy officer marks an alert handled, with a note

Revision ID: 0019_alert_handling
Revises: 0018_pseudonym_rotation
Create Date: 2026-12-03 10:00:00

An alert stays open until a privacy officer marks it handled on the `/alerts` page:
`handled_at`, `handled_by` (the officer's user name) and `note` (what was done or
concluded, at most 500 characters; kept here only, never in the audit log) are then
set together, once. Alerts raised before this revision are open. A check constraint
keeps the three together (batch mode: SQLite rebuilds the table for it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_alert_handling"
down_revision: str | None = "0018_pseudonym_rotation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HANDLED_TOGETHER = (
    "(handled_at IS NULL AND handled_by IS NULL AND note IS NULL)"
    " OR (handled_at IS NOT NULL AND handled_by IS NOT NULL AND note IS NOT NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("handled_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("note", sa.String(length=500), nullable=True))
        batch.create_check_constraint(op.f("ck_alerts_handled"), HANDLED_TOGETHER)


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint(op.f("ck_alerts_handled"), type_="check")
        batch.drop_column("note")
        batch.drop_column("handled_by")
        batch.drop_column("handled_at")
