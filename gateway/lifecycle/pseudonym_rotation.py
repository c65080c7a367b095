"""Pseudonym key rotation: `ketenpoort keys rotate pseudonym`, resumable and audited.

Every stored pseudonym is `k·H(match key)`; a new key `k'` makes it `k'·H(match key)`,
which is the stored element multiplied by `k'·k⁻¹` (`Pseudonymiser.rotation_to`), so
no identifier is needed to move a row. The design, chosen as the simplest that is
correct while the rotation runs:

1. **Start** (one transaction): a new pseudonym key is created in the key store, a
   `pseudonym_rotations` row names it (`finished_at` empty) and a `key.rotate` audit
   entry is written; then the old key is retired. From then on every process
   pseudonymises new signals and answers OPRF requests under the new key
   (`PseudonymiserSource` follows the key store's active key without a restart).
2. **Batches**: each transaction holds the matching cluster lock, takes up to
   `batch_size` rows still under an old key (`signal_pseudonyms.key_id`, indexed) and
   multiplies each by the factor from *its own* key to the new one, setting `key_id`.
   `key_id` is the progress marker: a crash loses at most one uncommitted batch, and a
   second run finds the open rotation row and carries on (no new key). A signal a
   process stored under the old key while the rotation ran (its request began before
   the key changed) is found and moved the same way.
3. **Matching is held, not wrong**: while a rotation row is open, the stored
   pseudonyms are under two keys, so the matching-outbox processor (which holds the
   same cluster lock) leaves its rows waiting. Submissions are still accepted and stored;
   their matching runs as soon as the rotation finishes, against rows all under the new
   key, so a new signal matches the old signals of the same person exactly as without a
   rotation. No valid request is refused.
4. **Finish** (one transaction, under the cluster lock): when no row is left under an
   old key, the rotation row is closed and a second `key.rotate` entry records the
   number of rows moved.

Old pseudonym keys stay in the key store, retired (a resumed rotation, and a signal
stored late under one, still need them). Audit entries keep the subject references they
were written with; references made after the rotation differ (they derive from the
pseudonyms).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.db import Database
from gateway.keys import KeyPurpose, KeyStore
from gateway.logs import get_logger
from gateway.pseudonyms.service import Pseudonymiser, Rotation
from gateway.signals.locks import lock_clusters
from gateway.signals.models import PseudonymRotationRow, SignalPseudonymRow

log = get_logger(__name__)

Progress = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    return None


def _no_hook(moved: int) -> None:
    return None


def _open_rotation(db: Database) -> PseudonymRotationRow | None:
    with db.session() as session:
        row = session.execute(
            select(PseudonymRotationRow)
            .where(PseudonymRotationRow.finished_at.is_(None))
            .order_by(PseudonymRotationRow.id)
            .limit(1)
        ).scalar_one_or_none()
        if row is not None:
            session.expunge(row)
        session.rollback()
    return row


def _audit(session: Session, actor: Actor, kid: str, detail: dict[str, Any]) -> None:
    record_event(
        session,
        AuditEvent(
            action="key.rotate",
            outcome="success",
            actor=actor,
            resource_type="key",
            resource_id=kid,
            detail={"kind": "pseudonym", "purpose": KeyPurpose.PSEUDONYM.value, **detail},
        ),
    )


def _start(db: Database, keys: KeyStore, actor: Actor) -> tuple[int, str, list[str]]:
    previous = [r for r in keys.records(KeyPurpose.PSEUDONYM) if r.status == "active"]
    new = keys.create(KeyPurpose.PSEUDONYM)
    try:
        with db.transaction() as session:
            row = PseudonymRotationRow(to_kid=new.kid, started_at=datetime.now(UTC), moved=0)
            session.add(row)
            session.flush()
            rotation_id = row.id
            _audit(
                session,
                actor,
                new.kid,
                {"phase": "started", "retired": [r.kid for r in previous]},
            )
    except BaseException:
        keys.retire(new.kid)  # never left active without its rotation row and audit entry
        raise
    for record in previous:
        keys.retire(record.kid)
    return rotation_id, new.kid, [r.kid for r in previous]


def rotate_pseudonym_key(
    db: Database,
    keys: KeyStore,
    *,
    actor: Actor,
    batch_size: int = 500,
    progress: Progress = _no_progress,
    after_batch: Callable[[int], None] = _no_hook,
) -> dict[str, Any]:
    """Rotate the pseudonym key, or resume the rotation a crash left open.

    `after_batch(moved so far)` runs after each committed batch (tests use it to submit
    signals, or to crash, between batches).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    open_row = _open_rotation(db)
    if open_row is None:
        rotation_id, to_kid, retired = _start(db, keys, actor)
        resumed = False
    else:
        rotation_id, to_kid, retired = open_row.id, open_row.to_kid, []
        resumed = True
        for record in keys.records(KeyPurpose.PSEUDONYM):
            if record.status == "active" and record.kid != to_kid:
                keys.retire(record.kid)  # a crash between creating and retiring
                retired.append(record.kid)
    target = Pseudonymiser.from_key_store(keys, to_kid)
    old_kids = [r.kid for r in keys.records(KeyPurpose.PSEUDONYM) if r.kid != to_kid]
    rotations: dict[str, Rotation] = {}

    def rotation_from(kid: str) -> Rotation:
        if kid not in rotations:
            rotations[kid] = Pseudonymiser.from_key_store(keys, kid).rotation_to(target)
        return rotations[kid]

    under_old = SignalPseudonymRow.key_id.in_(old_kids)
    with db.session() as session:
        total = session.execute(
            select(func.count()).select_from(SignalPseudonymRow).where(under_old)
        ).scalar_one()
        session.rollback()
    moved = 0
    progress(0, total)
    while True:
        with db.transaction() as session:
            lock_clusters(session)
            rows = session.execute(
                select(
                    SignalPseudonymRow.signal_pk,
                    SignalPseudonymRow.family,
                    SignalPseudonymRow.element,
                    SignalPseudonymRow.key_id,
                )
                .where(under_old)
                .order_by(SignalPseudonymRow.signal_pk, SignalPseudonymRow.family)
                .limit(batch_size)
            ).all()
            if not rows:
                row = session.get(PseudonymRotationRow, rotation_id)
                assert row is not None
                row.finished_at = datetime.now(UTC)
                _audit(
                    session,
                    actor,
                    to_kid,
                    {"phase": "finished", "rows": row.moved, "resumed": resumed},
                )
                total_moved = row.moved
                break
            for signal_pk, family, element, kid in rows:
                session.execute(
                    update(SignalPseudonymRow)
                    .where(
                        SignalPseudonymRow.signal_pk == signal_pk,
                        SignalPseudonymRow.family == family,
                        SignalPseudonymRow.element == element,
                    )
                    .values(element=rotation_from(kid).apply(bytes(element)), key_id=to_kid)
                    .execution_options(synchronize_session=False)
                )
            session.execute(
                update(PseudonymRotationRow)
                .where(PseudonymRotationRow.id == rotation_id)
                .values(moved=PseudonymRotationRow.moved + len(rows))
            )
        moved += len(rows)
        progress(moved, max(total, moved))
        after_batch(moved)
    log.info("pseudonym key rotated", kid=to_kid, rows=total_moved, resumed=resumed)
    return {
        "kind": "pseudonym",
        "kid": to_kid,
        "algorithm": target_algorithm(keys, to_kid),
        "retired": retired,
        "rows": total_moved,
        "resumed": resumed,
    }


def target_algorithm(keys: KeyStore, kid: str) -> str:
    return keys.get(kid).algorithm
