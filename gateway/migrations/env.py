"""Alembic environment: the connection comes from `gateway.migrate`, never from an ini file."""

from __future__ import annotations

from alembic import context

import gateway.models  # noqa: F401  (registers every model on Base.metadata)
from gateway.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():  # pragma: no cover
    raise SystemExit("offline migrations are not supported; run `ketenpoort init`")
run_migrations_online()
