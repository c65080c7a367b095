"""The sequencer: contiguous indices, stored nodes, a signed checkpoint per batch; safe with
several processes writing and sequencing at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from gateway.audit import AuditEvent, record_event, rfc9162
from gateway.audit.models import AuditCheckpointRow, AuditEntryRow, AuditNodeRow
from gateway.audit.note import open_checkpoint
from gateway.audit.sequencer import (
    MAX_BATCH,
    BackgroundSequencer,
    CheckpointSigner,
    pause_after,
    sequence_batch,
    sequence_pending,
)
from gateway.audit.tree import stored_consistency_proof, stored_inclusion_proof, stored_root
from gateway.audit.verify import verify_log
from gateway.audit.verify_rows import database_source
from gateway.config import Settings
from gateway.db import Database
from tests.audit.conftest import POLICE, write_events


def test_batches_get_contiguous_indices_and_checkpoints(
    database: Database, signer: CheckpointSigner, sequence: Callable[..., int]
) -> None:
    assert sequence() == 0  # idle: nothing to do, no checkpoint
    leaves = write_events(database, 23)
    assert sequence(max_batch=10) == 23
    with database.session() as session:
        rows = session.execute(
            select(AuditEntryRow.seq, AuditEntryRow.leaf_hash).order_by(AuditEntryRow.id)
        ).all()
        assert [r.seq for r in rows] == list(range(23))
        assert [r.leaf_hash for r in rows] == leaves
        checkpoints = (
            session.execute(select(AuditCheckpointRow).order_by(AuditCheckpointRow.id))
            .scalars()
            .all()
        )
        assert [c.size for c in checkpoints] == [10, 20, 23]
        for c in checkpoints:
            opened = open_checkpoint(c.note, [signer.verifier_key], origin="127.0.0.1:8080/audit")
            assert opened.size == c.size and opened.root == c.root_hash
            assert c.root_hash == rfc9162.root_of(leaves[: c.size]) == stored_root(session, c.size)
        # every complete subtree is stored: 23 leaves + 11 + 5 + 2 + 1
        assert session.execute(select(func.count()).select_from(AuditNodeRow)).scalar_one() == 42
        for index in range(23):
            proof = stored_inclusion_proof(session, index, 23)
            rfc9162.verify_inclusion(index, 23, leaves[index], proof, checkpoints[-1].root_hash)
        for first in range(1, 24):
            proof = stored_consistency_proof(session, first, 23)
            rfc9162.verify_consistency(
                first, 23, proof, rfc9162.root_of(leaves[:first]), checkpoints[-1].root_hash
            )


def test_later_entries_continue_the_tree(database: Database, sequence: Callable[..., int]) -> None:
    first = write_events(database, 5)
    sequence()
    second = write_events(database, 9)
    sequence(max_batch=4)
    with database.session() as session:
        assert stored_root(session, 14) == rfc9162.root_of(first + second)
        assert stored_root(session, 5) == rfc9162.root_of(first)


def test_uncommitted_entries_are_not_sequenced(
    database: Database, signer: CheckpointSigner, settings: Settings
) -> None:
    other = Database(settings.database_url)
    session = other.session(write=not database.is_sqlite)  # SQLite: one writer at a time
    if database.is_sqlite:
        record_event(session, AuditEvent(action="x.pending", outcome="success", actor=POLICE))
        session.rollback()
    else:
        record_event(session, AuditEvent(action="x.pending", outcome="success", actor=POLICE))
    write_events(database, 2)
    assert sequence_batch(database, signer) is not None
    session.rollback()
    session.close()
    other.dispose()
    with database.session() as s:
        assert s.execute(select(func.count()).select_from(AuditEntryRow)).scalar_one() == 2


def _writer(url: str, signer: dict[str, Any], count: int, worker: int) -> None:
    """One of 8 processes: writes entries one transaction at a time and sequences too."""
    db = Database(url)
    sign = CheckpointSigner(**signer)
    actor = POLICE.__class__(type="client", id=f"writer-{worker}", organisation="police")
    for i in range(count):
        with db.transaction() as session:
            record_event(
                session,
                AuditEvent(action="bench.write", outcome="success", actor=actor, detail={"i": i}),
            )
        if i % 4 == worker % 4:
            sequence_batch(db, sign, max_batch=7)
    db.dispose()


def test_eight_processes_write_and_sequence_concurrently(
    database: Database, signer: CheckpointSigner, settings: Settings, sequence: Callable[..., int]
) -> None:
    context = multiprocessing.get_context("fork")
    per_worker = 15
    fields = {"origin": signer.origin, "kid": signer.kid, "private_jwk": signer.private_jwk}
    processes = [
        context.Process(target=_writer, args=(settings.database_url, fields, per_worker, w))
        for w in range(8)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
        assert p.exitcode == 0
    sequence()
    with database.session() as session:
        seqs = (
            session.execute(select(AuditEntryRow.seq).order_by(AuditEntryRow.seq)).scalars().all()
        )
        per_writer = session.execute(
            select(AuditEntryRow.actor_id, func.count()).group_by(AuditEntryRow.actor_id)
        ).all()
    assert seqs == list(range(8 * per_worker))
    assert sorted(n for _, n in per_writer) == [per_worker] * 8
    entries, notes, close = database_source(settings.database_url)
    report = verify_log(entries, notes, [signer.verifier_key])
    close()
    assert report.ok, report.findings
    assert report.entries == 8 * per_worker and report.checkpoints >= 2


def test_background_sequencer_runs_when_enabled(settings: Settings, initialised: object) -> None:
    from dataclasses import replace

    from gateway.app import create_app
    from gateway.services import close_app

    app = create_app(settings=replace(settings, background_jobs=True))
    db = app.extensions["ketenpoort"].db
    try:
        write_events(db, 3)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db.session() as session:
                pending = session.execute(
                    select(func.count()).where(AuditEntryRow.seq.is_(None))
                ).scalar_one()
            if pending == 0:
                break
            time.sleep(0.05)
        assert pending == 0
    finally:
        close_app(app)


def test_the_wait_after_a_batch_shrinks_as_the_batch_fills() -> None:
    """A quiet log keeps one checkpoint per interval; a busy one is sequenced sooner."""
    assert pause_after(0, max_batch=1000, interval=0.25) == 0.25
    assert pause_after(500, max_batch=1000, interval=0.25) == 0.125
    assert pause_after(1000, max_batch=1000, interval=0.25) == 0.0
    assert pause_after(5000, max_batch=1000, interval=0.25) == 0.0
    waits = [pause_after(n) for n in (0, 1, MAX_BATCH // 4, MAX_BATCH // 2, MAX_BATCH)]
    assert waits == sorted(waits, reverse=True)


def test_the_background_sequencer_waits_by_its_last_batch(
    database: Database, signer: CheckpointSigner
) -> None:
    sequence_pending(database, signer)  # whatever set-up wrote
    job = BackgroundSequencer(database, lambda: signer, interval=1.0, max_batch=4)
    assert job.pause() == 1.0  # nothing sequenced yet
    write_events(database, 5)
    assert job.step() is True  # a full batch: again at once
    assert job.step() is False and job.pause() == 0.75  # one of four
    assert job.step() is False and job.pause() == 1.0  # idle
