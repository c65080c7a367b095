"""A drain leaves nothing behind that committed while it ran, whatever the ids' order.

On PostgreSQL an outbox row with a lower id can commit after one with a higher id; the
claim only looks for later rows, so the drain reads `has_pending` again before it stops
(found by a review of the processor's Core rewrite)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.db import Database
from gateway.matching import processor
from gateway.matching.processor import pending_counts, process_outbox
from gateway.signals.service import create_signal
from tests.signals.factory import NOW, new_signal, person


def test_a_lower_id_committed_during_the_drain_is_done_in_the_same_call(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite serialises its writers: ids follow commit order")
    slow = database.session(write=True)
    create_signal(slow, new_signal("police-oost", person()), now=NOW)  # the lower id, open
    slow.flush()
    with database.transaction() as session:
        create_signal(session, new_signal("zorg-twente", person()), now=NOW)  # committed
    real = processor._created

    def commit_the_slow_one_meanwhile(session: Any, row: Any, hit_policy: Any) -> Any:
        if slow.in_transaction():
            slow.commit()
        return real(session, row, hit_policy)

    monkeypatch.setattr(processor, "_created", commit_the_slow_one_meanwhile)
    try:
        done = process_outbox(database)
    finally:
        slow.close()
    assert len(done) == 2
    assert pending_counts(database)["pending"] == 0
