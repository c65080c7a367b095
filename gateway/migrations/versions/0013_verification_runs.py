"""audit review: policy rule and purpose as indexed columns, verification runs

Revision ID: 0013_verification_runs
Revises: 0012_signal_hardening
Create Date: 2026-11-30 02:30:00

- `audit_entries.policy_rule` and `.purpose` copy the entry's deciding rule and stated
  purpose out of its canonical bytes, so the privacy officer's filters use an index;
  existing entries are filled from their bytes (the bytes themselves are untouched, so
  the Merkle tree and every checkpoint stay as they were).
- `audit_subject_filters`: the privacy officer's subject filter (pseudonyms only), per
  web session, deleted with it.
- `audit_verification_runs`: the verifications started from the privacy officer's
  page, each finished record signed with the checkpoint key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_verification_runs"
down_revision: str | None = "0012_signal_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries") as batch:
        batch.add_column(sa.Column("policy_rule", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("purpose", sa.String(length=128), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE audit_entries SET "
            "policy_rule = left(convert_from(data, 'UTF8')::jsonb #>> '{policy,rule}', 128), "
            "purpose = left(convert_from(data, 'UTF8')::jsonb ->> 'purpose', 128)"
        )
    else:
        op.execute(
            "UPDATE audit_entries SET "
            "policy_rule = substr(json_extract(CAST(data AS TEXT), '$.policy.rule'), 1, 128), "
            "purpose = substr(json_extract(CAST(data AS TEXT), '$.purpose'), 1, 128)"
        )
    op.create_index("ix_audit_entries_policy_rule", "audit_entries", ["policy_rule"])
    op.create_index("ix_audit_entries_purpose", "audit_entries", ["purpose"])
    op.create_table(
        "audit_verification_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_by", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=True),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("first_bad_index", sa.BigInteger(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("external_size", sa.BigInteger(), nullable=True),
        sa.Column("signed_record", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_verification_runs")),
    )
    op.create_index(
        "ix_audit_verification_runs_started_at", "audit_verification_runs", ["started_at"]
    )
    op.create_table(
        "audit_subject_filters",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("subjects", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["web_sessions.id"],
            name=op.f("fk_audit_subject_filters_session_id_web_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_audit_subject_filters")),
    )


def downgrade() -> None:
    op.drop_table("audit_subject_filters")
    op.drop_index("ix_audit_verification_runs_started_at", table_name="audit_verification_runs")
    op.drop_table("audit_verification_runs")
    op.drop_index("ix_audit_entries_purpose", table_name="audit_entries")
    op.drop_index("ix_audit_entries_policy_rule", table_name="audit_entries")
    with op.batch_alter_table("audit_entries") as batch:
        batch.drop_column("purpose")
        batch.drop_column("policy_rule")
