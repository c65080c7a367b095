"""professionals: users of a partner organisation, and who filed a signal on the web

Revision ID: 0015_professionals
Revises: 0012_signal_hardening
Create Date: 2026-11-30 02:30:00

- `users.organisation` / `users.organisation_kind`: a professional belongs to a
  registered partner organisation (NULL for the meldpunt's own staff). The kind is
  copied from the registration (kinds never change) so every request can build the
  actor without a lookup.
- `signals.submitted_by`: the user who filed a signal through the web intake (NULL for
  a partner system's signal), so a professional lists and withdraws their own signals.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_professionals"
down_revision: str | None = "0014_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("organisation", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("organisation_kind", sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            op.f("fk_users_organisation_organisations"), "organisations", ["organisation"], ["id"]
        )
    with op.batch_alter_table("signals") as batch:
        batch.add_column(sa.Column("submitted_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.drop_column("submitted_by")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("fk_users_organisation_organisations"), type_="foreignkey")
        batch.drop_column("organisation_kind")
        batch.drop_column("organisation")
