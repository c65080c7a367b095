"""Partners as witnesses: a meldpunt that rewrites its audit log — signing the new one
with its own, genuine checkpoint key — is caught by a partner that kept its last
checkpoint, and a receipt whose entry vanished is reported. Against a live gateway, on
every test backend; the test rewrites history in the database as an insider would."""

from __future__ import annotations

import base64
import json
import random
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from gateway.audit import rfc9162
from gateway.audit.models import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditNodeRow,
    AuditSubjectRow,
)
from gateway.audit.sequencer import ADVISORY_LOCK_ID
from gateway.client import PartnerClient, WitnessError
from gateway.db import Database, advisory_xact_lock
from gateway.demo.people import people
from tests.client.conftest import enrol
from tests.integration.live import LiveGateway


def _submit(client: PartnerClient, n: int) -> dict[str, str]:
    person = people(1, seed=random.randrange(2**32))[0]
    created: dict[str, str] = client.submit_signal(
        f"BVH-2026-{n}", "possible-victim", person.subject(), {"summary": f"melding {n}"}
    )
    return created


def _wait_until_sequenced(database_url: str, timeout: float = 30.0) -> None:
    """Until the gateway's background sequencer has re-numbered every entry: a reader's
    catch-up skips while that sequencer holds the lock, and would see no checkpoint."""
    database = Database(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with database.transaction(write=False) as session:
                pending = session.execute(
                    select(AuditEntryRow.id).where(AuditEntryRow.seq.is_(None)).limit(1)
                ).first()
            if pending is None:
                return
            time.sleep(0.05)
    finally:
        database.dispose()
    raise AssertionError(f"the gateway did not re-sequence the log within {timeout} s")


def _rewrite_history(database_url: str) -> None:
    """Alter the first audit entry and have the log rebuilt from scratch: the gateway's
    own sequencer re-numbers every entry and signs new checkpoints with the real key."""
    database = Database(database_url)
    try:
        with database.transaction() as session:
            # keep the gateway's sequencers out meanwhile (their lock, in this schema)
            advisory_xact_lock(session, ADVISORY_LOCK_ID)
            first = session.execute(
                select(AuditEntryRow).order_by(AuditEntryRow.id).limit(1)
            ).scalar_one()
            entry = json.loads(first.data)
            entry["outcome"] = "failure" if entry.get("outcome") != "failure" else "success"
            forged = json.dumps(entry, separators=(",", ":"), sort_keys=True).encode()
            assert forged != first.data
            session.execute(delete(AuditCheckpointRow))
            session.execute(delete(AuditNodeRow))
            session.execute(update(AuditEntryRow).values(seq=None))
            session.execute(
                update(AuditEntryRow)
                .where(AuditEntryRow.id == first.id)
                .values(data=forged, leaf_hash=rfc9162.leaf_hash(forged))
            )
    finally:
        database.dispose()


def test_a_rewritten_log_makes_verify_raise(own_gateway: LiveGateway, tmp_path: Path) -> None:
    state = tmp_path / "police-state.json"
    police = enrol(own_gateway, "police", tmp_path)
    client = police.client(state_path=state)
    for n in range(3):
        _submit(client, n)
    first = client.verify()
    assert first.receipts_verified == 3 and first.consistent_with_previous is None
    _submit(client, 3)
    second = police.client(state_path=state).verify()  # a later run, from the state file
    assert second.consistent_with_previous is True and second.receipts_verified == 4
    assert second.checkpoint_size > first.checkpoint_size
    seen = json.loads(state.read_text())["checkpoint"]

    _rewrite_history(own_gateway.settings.database_url)
    _wait_until_sequenced(own_gateway.settings.database_url)

    with pytest.raises(WitnessError, match="does not extend the one"):
        police.client(state_path=state).verify()
    # the state still holds the honest checkpoint: the next look raises again
    assert json.loads(state.read_text())["checkpoint"] == seen
    with pytest.raises(WitnessError):
        police.client(state_path=state).verify()

    # The rewritten log is self-consistent and properly signed: a partner that never
    # looked before (same receipts, no checkpoint) finds nothing wrong. Only memory of
    # an earlier checkpoint exposes the rewrite.
    fresh = json.loads(state.read_text())
    fresh["checkpoint"] = None
    fresh["receipts"] = [{**r, "index": None} for r in fresh["receipts"]]
    newcomer_state = tmp_path / "newcomer.json"
    newcomer_state.write_text(json.dumps(fresh))
    report = police.client(state_path=newcomer_state).verify()
    assert report.receipts_verified == 4 and report.checkpoint_verified


def test_a_receipt_whose_entry_was_deleted_makes_verify_raise(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    client = enrol(own_gateway, "police", tmp_path).client(state_path=tmp_path / "state.json")
    removed = _submit(client, 0)
    _submit(client, 1)
    client.checkpoint()  # the gateway numbers what is pending before answering
    leaf = base64.b64decode(removed["receipt"]["leafHash"])  # type: ignore[index]

    database = Database(own_gateway.settings.database_url)
    try:
        with database.transaction() as session:
            row = session.execute(
                select(AuditEntryRow.id, AuditEntryRow.seq).where(AuditEntryRow.leaf_hash == leaf)
            ).one()
            assert row.seq is not None  # it was in the log
            session.execute(delete(AuditSubjectRow).where(AuditSubjectRow.entry_id == row.id))
            session.execute(delete(AuditEntryRow).where(AuditEntryRow.id == row.id))
    finally:
        database.dispose()

    with pytest.raises(WitnessError, match="missing from the log") as caught:
        client.verify()
    assert removed["receipt"]["leafHash"] in str(caught.value)  # type: ignore[index]


def test_a_first_look_that_waits_for_its_receipts_has_no_previous(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    """The first `verify` of a partner may have to wait for its receipts to be
    sequenced, and so fetch a second checkpoint; it still reports no earlier look (the
    checkpoint it fetched a moment ago in the same call is no earlier look)."""
    url = own_gateway.settings.database_url
    if not url.startswith("postgresql"):
        pytest.skip("holds the sequencer off with its advisory lock (PostgreSQL)")
    police = enrol(own_gateway, "police", tmp_path)
    holder_db = Database(url)
    holder = holder_db.session()
    held: list[bool] = []

    def sleep(seconds: float) -> None:  # the client's wait: let the sequencer go on
        if held:
            holder.rollback()
            held.clear()
        time.sleep(seconds)

    try:
        client = police.client(state_path=tmp_path / "state.json", sleep=sleep)
        _submit(client, 0)
        _wait_until_sequenced(url)
        advisory_xact_lock(holder, ADVISORY_LOCK_ID)  # the next receipt waits for it
        held.append(True)
        _submit(client, 1)
        report = client.verify()
        assert not held  # it did wait, and saw a second checkpoint
        assert report.receipts_verified == 2 and report.consistent_with_previous is None
        again = client.verify()
        assert again.consistent_with_previous is True
    finally:
        holder.close()
        holder_db.dispose()
