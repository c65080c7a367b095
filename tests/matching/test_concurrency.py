"""Partners submitting the same person at the same moment still produce one match.

Real concurrent transactions: each thread has its own connection and session, and they
start together at a barrier. Matching runs in the outbox processor, so the race that
matters is between processors (several gateway processes drain at once) and between
submissions and a processor. The lookup is slowed down (a sleep after it) so that,
without the processor's lock, both would look before either commits and each would
either miss the other or both would build a match.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.db import Database
from gateway.matching import service as matching_service
from gateway.matching.models import COORDINATOR, MatchingOutboxRow
from gateway.matching.processor import Processed, process_outbox
from gateway.matching.service import list_matches, list_notifications
from gateway.signals.models import SignalRow
from gateway.signals.service import Created, NewSignal, create_signal
from tests.conftest import TEST_CURSORS
from tests.signals.factory import NOW, count, new_signal, person


@pytest.fixture
def slow_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    real = matching_service.candidate_pks

    def slowed(*args: Any, **kwargs: Any) -> list[int]:
        found = real(*args, **kwargs)
        time.sleep(0.15)
        return found

    monkeypatch.setattr(matching_service, "candidate_pks", slowed)


def race(database: Database, signals: list[NewSignal]) -> list[Created]:
    """Create `signals` in concurrent transactions that start at the same moment."""
    barrier = threading.Barrier(len(signals))

    def run(new: NewSignal) -> Created:
        if database.is_sqlite:
            barrier.wait(timeout=10)
            session = database.session(write=True)  # BEGIN IMMEDIATE: one writer at a time
        else:
            session = database.session(write=True)
            session.connection()
            barrier.wait(timeout=10)
        try:
            created = create_signal(session, new, now=NOW)
            session.commit()
            return created
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    with ThreadPoolExecutor(len(signals)) as pool:
        return list(pool.map(run, signals))


def drain_at_once(database: Database, processors: int) -> list[Processed]:
    """`processors` drains of the outbox, as several gateway processes would, at once."""
    barrier = threading.Barrier(processors)

    def run(_: int) -> list[Processed]:
        barrier.wait(timeout=10)
        return process_outbox(database)

    with ThreadPoolExecutor(processors) as pool:
        return [p for done in pool.map(run, range(processors)) for p in done]


def matching_entries(database: Database) -> list[str]:
    with database.transaction(write=False) as session:
        rows = session.execute(
            select(AuditEntryRow.data).where(AuditEntryRow.action == "matching.update")
        ).scalars()
        return sorted(json.loads(data)["resource"]["id"] for data in rows)


@pytest.mark.usefixtures("slow_lookup")
def test_two_partners_at_once_make_one_match(database: Database) -> None:
    ids: list[str] = []
    for _ in range(3):
        subject = person()
        results = race(
            database, [new_signal("police-oost", subject), new_signal("zorg-twente", subject)]
        )
        ids.extend(r.signal.id for r in results)
        done = drain_at_once(database, 2)
        assert sorted(p.signal_id for p in done) == sorted(r.signal.id for r in results)
        assert sum(len(p.changes) for p in done) == 1
    with database.transaction(write=False) as session:
        matches = list_matches(session, None, 50).items
        assert len(list_notifications(session, COORDINATOR, None, 50, TEST_CURSORS).items) == 3
        assert count(session, MatchingOutboxRow) == 0
    assert len(matches) == 3 and all(len(m.signals) == 2 for m in matches)
    assert matching_entries(database) == sorted(ids)  # one entry per signal, hit or miss


@pytest.mark.usefixtures("slow_lookup")
def test_processors_racing_submissions_still_make_one_match(database: Database) -> None:
    """Processors drain while the second signal about a person is being committed."""
    subject = person()
    with database.transaction() as session:
        first = create_signal(session, new_signal("police-oost", subject), now=NOW)
    barrier = threading.Barrier(3)

    def submit_second() -> list[Processed]:
        barrier.wait(timeout=10)
        with database.transaction() as session:
            create_signal(session, new_signal("zorg-twente", subject), now=NOW)
        return []

    def drain() -> list[Processed]:
        barrier.wait(timeout=10)
        return process_outbox(database)

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(submit_second), pool.submit(drain), pool.submit(drain)]
        [f.result() for f in futures]
    process_outbox(database)  # whatever committed after the racing drains looked
    with database.transaction(write=False) as session:
        (match,) = list_matches(session, None, 50).items
        assert len(list_notifications(session, COORDINATOR, None, 50, TEST_CURSORS).items) == 1
    assert first.signal.id in {s.id for s in match.signals} and len(match.signals) == 2


@pytest.mark.usefixtures("slow_lookup")
def test_three_partners_at_once_make_one_match_of_three(database: Database) -> None:
    subject = person()
    orgs = ["police-oost", "zorg-twente", "roc-twente"]
    # Different linkage keys too: bsn only, both, name and date of birth only.
    shapes: list[Callable[[dict[str, bytes]], dict[str, bytes]]] = [
        lambda p: {"bsn": p["bsn"]},
        lambda p: dict(p),
        lambda p: {"name_dob": p["name_dob"]},
    ]
    race(database, [new_signal(o, shape(subject)) for o, shape in zip(orgs, shapes, strict=True)])
    drain_at_once(database, 3)
    with database.transaction(write=False) as session:
        (match,) = list_matches(session, None, 50).items
        kinds = [
            n.type for n in list_notifications(session, COORDINATOR, None, 50, TEST_CURSORS).items
        ]
    assert sorted(s.organisation for s in match.signals) == sorted(orgs)
    # One match either way; whether it grew on the way depends on the processing order.
    assert kinds[0] == "match" and set(kinds) <= {"match", "match.updated"}


def test_concurrent_retries_with_one_idempotency_key_store_one_signal(
    database: Database, slow_lookup: None
) -> None:
    subject = person()
    same = [
        new_signal("police-oost", subject, idempotency_key="retry-1", body=b"x") for _ in range(2)
    ]
    results = race(database, same)
    assert sorted(r.created for r in results) == [False, True]
    assert results[0].signal.id == results[1].signal.id
    with database.transaction(write=False) as session:
        assert count(session, SignalRow) == 1
