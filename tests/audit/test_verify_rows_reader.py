"""The verifier's row source (`gateway.audit.verify_rows`): on PostgreSQL a reader
thread fetches ahead; a verification that stops early, or a failing fetch, neither
hangs nor loses the error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.audit import verify_rows
from gateway.audit.verify_rows import _Reader, database_source
from gateway.config import Settings
from gateway.db import Database
from tests.audit.conftest import write_events


class _Cursor:
    def __init__(self, chunks: list[list[Any]], fail_after: int | None = None) -> None:
        self._chunks, self._fail_after, self.closed = list(chunks), fail_after, False

    def fetchmany(self, _size: int) -> list[Any]:
        if self._fail_after is not None and self._fail_after <= 0:
            raise RuntimeError("connection lost")
        if self._fail_after is not None:
            self._fail_after -= 1
        return self._chunks.pop(0) if self._chunks else []

    def close(self) -> None:
        self.closed = True


def test_the_reader_hands_over_every_chunk_then_ends() -> None:
    cursor = _Cursor([[1, 2], [3], [4, 5]])
    reader = _Reader(lambda: cursor)
    got: list[Any] = []
    while chunk := reader.next():
        got.extend(chunk)
    reader.stop()
    assert got == [1, 2, 3, 4, 5] and cursor.closed


def test_a_failing_fetch_is_raised_to_the_verifier() -> None:
    cursor = _Cursor([[1], [2], [3]], fail_after=1)
    reader = _Reader(lambda: cursor)
    assert reader.next() == [1]
    with pytest.raises(RuntimeError, match="connection lost"):
        reader.next()
    reader.stop()
    assert cursor.closed


def test_stopping_early_does_not_wait_for_the_verifier() -> None:
    cursor = _Cursor([[n] for n in range(50)])  # far more than AHEAD chunks
    reader = _Reader(lambda: cursor)
    assert reader.next() == [0]
    reader.stop()  # the thread is blocked on a full queue: it must still end
    assert cursor.closed


def test_a_verification_that_stops_early_closes_its_source(
    database: Database,
    settings: Settings,
    sequence: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_events(database, 12)
    assert sequence() == 12
    monkeypatch.setattr(verify_rows, "CHUNK", 2)
    entries, _notes, close = database_source(settings.database_url)
    first = [next(entries) for _ in range(3)]
    close()  # neither hangs nor leaves the cursor open
    assert len(first) == 3
    entries, _notes, close = database_source(settings.database_url)
    try:
        assert len(list(entries)) == 12
    finally:
        close()
