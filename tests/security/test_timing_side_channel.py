"""Weakness 2 of the outside attack: the timing side channel.

A submission about a person another partner reported used to take the cluster lock,
update the cluster and write notifications inside the request, so it took measurably
longer than one about a fresh person. Now the request does the same work for both — it
stores the signal, its pseudonyms, an outbox row and the partner's audit entry — and the
matching runs after the commit, in the outbox processor. These tests show the request's
statements are the same for a hit and a miss and touch no match or notification table,
that the match still happens once the outbox is drained, and that a row left behind by
a crash is processed later, exactly once.

(`bench/bench_timing.py` measures the latencies themselves.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select

from gateway import ratelimit
from gateway.audit.models import AuditEntryRow
from gateway.db import Database
from gateway.matching import processor
from gateway.matching.models import COORDINATOR, MatchingOutboxRow, MatchRow, NotificationRow
from gateway.matching.processor import process_outbox
from gateway.matching.service import list_matches, list_notifications
from gateway.signals.service import create_signal
from tests.conftest import TEST_CURSORS
from tests.security.test_matching_oracle import FRESH, REPORTED
from tests.signals.factory import NOW, count, new_signal, person
from tests.signals.test_api import body

#: Tables only matching may touch; a request that did would cost a hit more than a miss.
MATCHING_TABLES = re.compile(r"\b(matches|match_members|notifications)\b", re.IGNORECASE)
WARM_UP = {"bsn": "100000009", "familyName": "Smit", "dateOfBirth": "2006-05-06"}


@pytest.fixture(autouse=True)
def no_random_housekeeping(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate limiter purges idle buckets on a random 1 in 64 requests, whatever they
    carry; compared statement by statement, that coin would fail these tests now and
    then, so it is off here."""
    monkeypatch.setattr(ratelimit, "PURGE_PROBABILITY", 0.0)


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """Every SQL statement sent while the block runs (text only, whitespace folded)."""
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)


def matching_entries(database: Database, signal_id: str) -> int:
    with database.transaction(write=False) as session:
        rows = session.execute(
            select(AuditEntryRow.data).where(AuditEntryRow.action == "matching.update")
        ).scalars()
        return sum(1 for data in rows if json.loads(data)["resource"]["id"] == signal_id)


def test_a_hit_and_a_miss_do_the_same_work_in_the_request(
    client: FlaskClient, police: dict[str, str], care: dict[str, str], meldpunt: dict[str, str]
) -> None:
    database: Database = client.application.extensions["ketenpoort"].db

    def submit(headers: dict[str, str], reference: str, subject: dict[str, str]) -> str:
        response = client.post(
            "/v1/signals", json=body(client, headers, reference, **subject), headers=headers
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        signal_id: str = response.get_json()["id"]
        return signal_id

    submit(care, "JZ-1", REPORTED)
    submit(police, "BVH-0", WARM_UP)  # caches (directory, pseudonym key) warm for both
    process_outbox(database)
    # The bodies are built first: only the POST itself is recorded.
    hit_body = body(client, police, "BVH-1", **REPORTED)
    miss_body = body(client, police, "BVH-2", **FRESH)
    recorded: dict[str, list[str]] = {}
    ids: dict[str, str] = {}
    for name, sent in (("hit", hit_body), ("miss", miss_body)):
        with statements(database) as seen:
            response = client.post("/v1/signals", json=sent, headers=police)
        assert response.status_code == 201
        ids[name], recorded[name] = response.get_json()["id"], seen

    assert recorded["hit"] == recorded["miss"]
    assert not [s for s in recorded["hit"] if MATCHING_TABLES.search(s)]
    assert not [s for s in recorded["hit"] if "advisory" in s]  # no lock a match could hold
    # (on PostgreSQL the outbox row is one part of the statement that stores the signal)
    assert any("INSERT INTO matching_outbox" in s for s in recorded["hit"])
    with database.transaction(write=False) as session:
        pending = session.execute(select(MatchingOutboxRow.event)).scalars().all()
        assert pending == ["created", "created"] and count(session, MatchRow) == 0
        assert count(session, NotificationRow) == 0
    assert matching_entries(database, ids["hit"]) == matching_entries(database, ids["miss"]) == 0

    # The meldpunt's read drains the outbox first: the match is there.
    (match,) = client.get("/v1/matches", headers=meldpunt).get_json()["items"]
    assert ids["hit"] in {s["id"] for s in match["signals"]}
    assert matching_entries(database, ids["hit"]) == matching_entries(database, ids["miss"]) == 1

    # Withdrawing: the same work again, whether or not the signal is in a match.
    withdrawn: dict[str, list[str]] = {}
    for name in ("hit", "miss"):
        with statements(database) as seen:
            response = client.delete(f"/v1/signals/{ids[name]}", headers=police)
        assert response.status_code == 200
        withdrawn[name] = seen
    assert withdrawn["hit"] == withdrawn["miss"]
    assert not [s for s in withdrawn["hit"] if MATCHING_TABLES.search(s)]
    coordinator = client.get("/v1/notifications", headers=meldpunt).get_json()["items"]
    assert [n["type"] for n in coordinator] == ["match", "signal.withdrawn"]
    assert matching_entries(database, ids["hit"]) == matching_entries(database, ids["miss"]) == 2


def test_a_row_left_by_a_crash_is_processed_later_exactly_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.migrate import upgrade_to_head

    first = Database(database_url)
    upgrade_to_head(first.engine)
    subject = person()
    with first.transaction() as session:
        a = create_signal(session, new_signal("police-oost", subject), now=NOW).signal
    process_outbox(first)
    with first.transaction() as session:
        b = create_signal(session, new_signal("zorg-twente", subject), now=NOW).signal

    # The processor dies after building the match, before its commit.
    real: Callable[..., None] = processor.record_matching

    def crash(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise RuntimeError("the process died here")

    monkeypatch.setattr(processor, "record_matching", crash)
    assert process_outbox(first) == []
    with first.transaction(write=False) as session:
        (left,) = session.execute(select(MatchingOutboxRow)).scalars()
        assert left.event == "created" and left.attempts == 1
        assert count(session, MatchRow) == 0 and count(session, NotificationRow) == 0
    assert matching_entries(first, b.id) == 0
    first.dispose()
    monkeypatch.undo()

    # Another process, later: the row is still there and yields the match, once.
    later = Database(database_url)
    try:
        (done,) = process_outbox(later)
        assert done.signal_id == b.id and [c.kind for c in done.changes] == ["created"]
        assert process_outbox(later) == []  # nothing left: a re-run changes nothing
        with later.transaction(write=False) as session:
            (match,) = list_matches(session, None, 10).items
            assert {s.id for s in match.signals} == {a.id, b.id}
            notes = list_notifications(session, COORDINATOR, None, 10, TEST_CURSORS).items
            assert [(n.type, n.signal_id) for n in notes] == [("match", b.id)]
            assert count(session, MatchingOutboxRow) == 0
        assert matching_entries(later, a.id) == matching_entries(later, b.id) == 1
    finally:
        later.dispose()


def test_a_row_that_keeps_failing_is_set_aside(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poison row does not block the others, and is not retried for ever."""
    from gateway.migrate import upgrade_to_head

    database = Database(database_url)
    upgrade_to_head(database.engine)
    try:
        with database.transaction() as session:
            bad = create_signal(session, new_signal("police-oost", person()), now=NOW).signal
            good = create_signal(session, new_signal("zorg-twente", person()), now=NOW).signal
        real = processor._created

        def fail_for_bad(session: Any, row: Any, hit_policy: Any) -> Any:
            if processor.signal_facts(row).id == bad.id:
                raise RuntimeError("poison")
            return real(session, row, hit_policy)

        monkeypatch.setattr(processor, "_created", fail_for_bad)
        for _ in range(processor.MAX_ATTEMPTS):
            assert process_outbox(database) == []
        (done,) = process_outbox(database)
        assert done.signal_id == good.id
        assert processor.pending_counts(database) == {"pending": 0, "failed": 1}
    finally:
        database.dispose()
