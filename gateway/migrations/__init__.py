"""Alembic migrations; `ketenpoort init` upgrades to head."""
