"""Advisory locks are per schema: two gateways (or two test runs) in different schemas
of one PostgreSQL database never take each other's audit-sequencer lock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.audit.sequencer import ADVISORY_LOCK_ID
from gateway.db import Database, advisory_xact_lock, try_advisory_xact_lock
from gateway.signals.locks import lock_clusters, try_lock_clusters
from tests.conftest import postgres_schema


@pytest.fixture
def other_schema_url(database_url: str) -> Iterator[str]:
    """A second schema of the same database (SQLite: a second look at the same file)."""
    if not database_url.startswith("postgresql"):
        yield database_url
        return
    with postgres_schema("t") as url:
        yield url


def test_the_sequencer_lock_is_per_schema(database_url: str, other_schema_url: str) -> None:
    here, there = Database(database_url), Database(other_schema_url)
    try:
        with here.session() as holder, here.session() as rival, there.session() as neighbour:
            advisory_xact_lock(holder, ADVISORY_LOCK_ID)  # as the witness test holds it
            if here.is_sqlite:
                return  # no advisory locks: BEGIN IMMEDIATE serialises the writers
            assert not try_advisory_xact_lock(rival, ADVISORY_LOCK_ID)  # same schema
            assert try_advisory_xact_lock(neighbour, ADVISORY_LOCK_ID)  # another schema
            holder.rollback()  # transaction-scoped: released at the end
            assert try_advisory_xact_lock(rival, ADVISORY_LOCK_ID)
    finally:
        here.dispose()
        there.dispose()


def test_the_matching_cluster_lock_is_per_schema(database_url: str, other_schema_url: str) -> None:
    """The outbox processors of two instances (two schemas) never wait for each other."""
    here, there = Database(database_url), Database(other_schema_url)
    try:
        with here.session() as holder, here.session() as rival, there.session() as neighbour:
            lock_clusters(holder)
            if here.is_sqlite:
                return
            assert not try_lock_clusters(rival)
            assert try_lock_clusters(neighbour)
            holder.rollback()
            assert try_lock_clusters(rival)
    finally:
        here.dispose()
        there.dispose()
