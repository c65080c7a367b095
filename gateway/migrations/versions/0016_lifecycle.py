"""lifecycle: payload epochs for crypto-shredding, tombstones of erased case signals

Revision ID: 0016_lifecycle
Revises: 0012_signal_hardening
Create Date: 2026-11-30 02:40:00

- `signals.payload_epoch`: the epoch key (in the key store, never here) a stored
  payload is wrapped under. Payloads stored before stay plain JWE text (NULL here) and
  are read as they are; they are erased with their signal like any other.
- `case_erasures`: a case's tombstone of a linked signal erased at the end of its
  retention (category and dates only).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_lifecycle"
down_revision: str | None = "0015_professionals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.add_column(sa.Column("payload_epoch", sa.String(length=64), nullable=True))
        batch.create_index("ix_signals_payload_epoch", ["payload_epoch"])
    op.create_table(
        "case_erasures",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("case_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_pk"],
            ["cases.pk"],
            name=op.f("fk_case_erasures_case_pk_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_case_erasures")),
    )
    op.create_index("ix_case_erasures_case_pk", "case_erasures", ["case_pk", "pk"])


def downgrade() -> None:
    op.drop_index("ix_case_erasures_case_pk", table_name="case_erasures")
    op.drop_table("case_erasures")
    with op.batch_alter_table("signals") as batch:
        batch.drop_index("ix_signals_payload_epoch")
        batch.drop_column("payload_epoch")
