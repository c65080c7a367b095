"""signal hardening: role feeds in their own namespace, no raw idempotency keys at rest

Revision ID: 0012_signal_hardening
Revises: 0011_rate_limits
Create Date: 2026-11-29 23:30:00

- The coordinator's notification feed was the recipient "coordinator", which an
  organisation registered with that id would read (security finding 6). Role feeds are
  now "role:<name>"; no organisation id can contain ":". Rows move over unless an
  organisation "coordinator" exists (then the two feeds cannot be told apart, and the
  operator must decide; the upgrade leaves them as they are).
- Idempotency keys are stored as keyed hashes now (security finding 8). Keys stored raw
  before cannot be hashed here (the key store is not at hand), so they are dropped with
  their stored responses: a retry across the upgrade is taken as a new submission.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_signal_hardening"
down_revision: str | None = "0011_rate_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE notifications SET recipient = 'role:coordinator' "
        "WHERE recipient = 'coordinator' "
        "AND NOT EXISTS (SELECT 1 FROM organisations WHERE id = 'coordinator')"
    )
    op.execute(
        "UPDATE signals SET idempotency_key = NULL, request_hash = NULL, stored_response = NULL "
        "WHERE idempotency_key IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE notifications SET recipient = 'coordinator' WHERE recipient = 'role:coordinator'"
    )
