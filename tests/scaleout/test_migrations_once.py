"""Two hosts starting together both run `ketenpoort init`: on PostgreSQL the migration
lock makes the second wait and then find the schema at head, instead of both creating
the same tables (and one failing halfway)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from gateway.db import Database
from gateway.migrate import upgrade_to_head
from tests.conftest import POSTGRES_URL, postgres_schema

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="KETENPOORT_TEST_POSTGRES_URL is not set (no PostgreSQL run)"
)


def test_two_upgrades_at_once_both_succeed() -> None:
    with postgres_schema("mig") as url:
        databases = [Database(url), Database(url)]
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def upgrade(database: Database) -> None:
            start.wait(timeout=10)
            try:
                upgrade_to_head(database.engine)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=upgrade, args=(d,)) for d in databases]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        try:
            assert errors == []
            with databases[0].engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            assert len(versions) == 1
        finally:
            for database in databases:
                database.dispose()
