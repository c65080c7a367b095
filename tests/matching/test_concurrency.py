"""Partners submitting the same person at the same moment still produce one match.

Real concurrent transactions: each thread has its own connection and session, and they
start together at a barrier. The lookup is slowed down (a sleep after it) so that,
without the per-pseudonym locks, both transactions would look before either commits
and neither would see the other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from gateway.db import Database
from gateway.matching import service as matching_service
from gateway.matching.service import list_matches
from gateway.signals.models import SignalRow
from gateway.signals.service import Created, NewSignal, create_signal
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


@pytest.mark.usefixtures("slow_lookup")
def test_two_partners_at_once_make_one_match(database: Database) -> None:
    for _ in range(3):
        subject = person()
        results = race(
            database, [new_signal("police-oost", subject), new_signal("zorg-twente", subject)]
        )
        assert sum(len(r.matches) for r in results) == 1
    with database.transaction(write=False) as session:
        matches = list_matches(session, None, 50).items
    assert len(matches) == 3 and all(len(m.signals) == 2 for m in matches)


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
    with database.transaction(write=False) as session:
        (match,) = list_matches(session, None, 50).items
    assert sorted(s.organisation for s in match.signals) == sorted(orgs)


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
