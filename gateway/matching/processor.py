"""The outbox processor: matching, notifications and the gateway's matching entry, after
the request that stored (or withdrew, or expired) a signal committed.

Each outbox row is done in one transaction that holds the cluster lock (on PostgreSQL a
transaction-scoped advisory lock; on SQLite BEGIN IMMEDIATE): the row is claimed
(`FOR UPDATE SKIP LOCKED`), the work is done — the candidate lookup, the cluster
update, the notifications and the gateway's `matching.update` audit entry, written once
per row, for a hit and a miss alike — and the row is deleted, all in that transaction.
A crash before the commit leaves the row to be done again; a row can never be done
twice, because doing it deletes it. Processors in several processes are safe: the
cluster lock runs them one row at a time, which is also what lets a signal see exactly
the signals processed before it (see `gateway.matching.outbox`).

`process_outbox` drains synchronously (tests, the CLI, the demo, and the read paths
that must show a match right after a submission); `gateway.matching.jobs` runs it in a
background thread in every gateway process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.audit.entries import SubjectRef
from gateway.db import Database
from gateway.logs import get_logger
from gateway.matching.models import MatchingOutboxRow
from gateway.matching.outbox import stored_subjects
from gateway.matching.service import (
    HitPolicy,
    HitRule,
    MatchChange,
    MatchOutcome,
    match_new_signal,
    no_hits,
    on_signal_removed,
    record_matching,
    utc,
)
from gateway.policy.engine import PolicyEngine
from gateway.signals.locks import lock_clusters, try_lock_clusters
from gateway.signals.models import PseudonymRotationRow, SignalPseudonymRow, SignalRow
from gateway.signals.service import subject_refs

log = get_logger(__name__)

#: A row that failed this often is skipped (and logged) until an operator looks at it.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Processed:
    """What the processor did for one outbox row (for tests, the demo and logs)."""

    event: str
    signal_id: str
    #: For "created": the matches the signal created, grew or merged.
    changes: list[MatchChange] = field(default_factory=list)
    #: For "created": the earliest active signal of the same organisation and person.
    repeat_of: str | None = None
    #: The ids of the matches the signal joined ("created") or was in (a removal).
    match_ids: tuple[str, ...] = ()


def hit_policy_of(engine: PolicyEngine) -> HitPolicy:
    """The policy's rule for what partners of each kind learn of a match."""

    def hit_policy(kind: str) -> HitRule:
        return HitRule(
            notify=engine.tells_hit(kind), reveal_organisations=engine.reveals_organisations(kind)
        )

    return hit_policy


def has_pending(db: Database) -> bool:
    """A cheap read: is there work? (So an idle processor never takes a write lock.)"""
    with db.session() as session:
        found = session.execute(
            select(MatchingOutboxRow.id).where(MatchingOutboxRow.attempts < MAX_ATTEMPTS).limit(1)
        ).first()
        session.rollback()
    return found is not None


def _pseudonyms(session: Session, signal_pk: int) -> dict[str, frozenset[bytes]]:
    rows = session.execute(
        select(SignalPseudonymRow.family, SignalPseudonymRow.element).where(
            SignalPseudonymRow.signal_pk == signal_pk
        )
    )
    found: dict[str, set[bytes]] = {}
    for family, element in rows:
        found.setdefault(family, set()).add(bytes(element))
    return {family: frozenset(elements) for family, elements in found.items()}


def _removal_subjects(session: Session, signal_pk: int) -> tuple[SubjectRef, ...]:
    """A signal withdrawn before its matching ran: its removal row names its subjects."""
    text = session.execute(
        select(MatchingOutboxRow.subjects).where(
            MatchingOutboxRow.signal_pk == signal_pk, MatchingOutboxRow.event != "created"
        )
    ).scalar_one_or_none()
    return stored_subjects(text)


def _created(
    session: Session, row: MatchingOutboxRow, signal: SignalRow, hit_policy: HitPolicy
) -> Processed:
    pseudonyms = _pseudonyms(session, signal.pk)
    if signal.status == "active" and pseudonyms:
        outcome = match_new_signal(session, signal, pseudonyms, utc(row.created_at), hit_policy)
        subjects = subject_refs(pseudonyms)
    else:  # withdrawn or expired before its turn: it matches nothing any more
        outcome = MatchOutcome([], None)
        subjects = _removal_subjects(session, signal.pk)
    match_ids = tuple(sorted({c.match.id for c in outcome.changes}))
    detail: dict[str, Any] = {"event": "created", "matches": list(match_ids)}
    if outcome.repeat_of:
        detail["repeatOf"] = outcome.repeat_of
    record_matching(session, signal.id, subjects, detail)
    if outcome.repeat_of:
        # Last, so the lock on the partner's own signal row is held for an instant only.
        session.execute(
            update(SignalRow)
            .where(SignalRow.pk == signal.pk)
            .values(repeat_of=outcome.repeat_of)
            .execution_options(synchronize_session=False)
        )
    return Processed("created", signal.id, outcome.changes, outcome.repeat_of, match_ids)


def _removed(
    session: Session, row: MatchingOutboxRow, signal: SignalRow, hit_policy: HitPolicy
) -> Processed:
    type_: Literal["signal.withdrawn", "signal.expired"] = (
        "signal.withdrawn" if row.event == "withdrawn" else "signal.expired"
    )
    match_ids = tuple(on_signal_removed(session, signal, type_, utc(row.created_at), hit_policy))
    record_matching(
        session,
        signal.id,
        stored_subjects(row.subjects),
        {"event": row.event, "changed": True, "matches": list(match_ids)},
    )
    return Processed(row.event, signal.id, match_ids=match_ids)


def _do(session: Session, row: MatchingOutboxRow, hit_policy: HitPolicy) -> Processed:
    signal = session.execute(
        select(SignalRow)
        .where(SignalRow.pk == row.signal_pk)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if row.event == "created":
        return _created(session, row, signal, hit_policy)
    return _removed(session, row, signal, hit_policy)


def _note_failure(db: Database, row_id: int) -> None:
    try:
        with db.transaction() as session:
            session.execute(
                update(MatchingOutboxRow)
                .where(MatchingOutboxRow.id == row_id)
                .values(attempts=MatchingOutboxRow.attempts + 1)
            )
    except Exception:  # the database may be what failed; the row is simply tried again
        log.exception("matching outbox: could not record a failed attempt", row=row_id)


def rotation_under_way(session: Session) -> bool:
    """Is a pseudonym key rotation started and not finished? (A tiny-table read.)

    Its stored pseudonyms are then under two keys, so matching waits for it
    (`gateway.lifecycle.pseudonym_rotation`); the rotation holds the cluster lock for
    each batch, so this read under that lock sees a consistent state.
    """
    found = session.execute(
        select(PseudonymRotationRow.id).where(PseudonymRotationRow.finished_at.is_(None)).limit(1)
    ).first()
    return found is not None


class _Busy(Exception):
    """Another process holds the cluster lock (only when not waiting for it)."""


def process_next(
    db: Database, hit_policy: HitPolicy = no_hits, *, wait: bool = True
) -> Processed | None:
    """Claim, do and delete the oldest pending row in one transaction; None when idle
    (or while a pseudonym key rotation runs: its rows then wait).

    `wait=False`: give up at once (None) when another process is processing.
    Raises what the work raised, after counting the failed attempt.
    """
    row_id: int | None = None
    with db.session(write=True) as session:
        try:
            if wait:
                lock_clusters(session)
            elif not try_lock_clusters(session):
                raise _Busy
            if rotation_under_way(session):
                raise _Busy  # the rows wait until the pseudonym key rotation is done
            row = session.execute(
                select(MatchingOutboxRow)
                .where(MatchingOutboxRow.attempts < MAX_ATTEMPTS)
                .order_by(MatchingOutboxRow.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if row is None:
                session.rollback()
                return None
            row_id = row.id
            done = _do(session, row, hit_policy)
            session.delete(row)
            session.commit()
            return done
        except _Busy:
            session.rollback()
            return None
        except Exception:
            session.rollback()
            if row_id is not None:
                _note_failure(db, row_id)
            raise


def process_outbox(
    db: Database,
    hit_policy: HitPolicy = no_hits,
    *,
    limit: int | None = None,
    wait: bool = True,
) -> list[Processed]:
    """Process pending rows until none is left (or `limit`); returns what was done.

    A row whose work fails is logged, counted and left for a later run (this run stops
    there; after `MAX_ATTEMPTS` failures the row is skipped). `wait=False` (the
    background job) stops when another process is processing.
    """
    done: list[Processed] = []
    while limit is None or len(done) < limit:
        if not has_pending(db):
            break
        try:
            result = process_next(db, hit_policy, wait=wait)
        except Exception:
            log.exception("matching outbox: a row failed; it will be tried again")
            break
        if result is None:
            break
        done.append(result)
    return done


def pending_counts(db: Database) -> Mapping[str, int]:
    """Rows waiting, and rows given up on (for operators and tests)."""
    with db.session() as session:
        rows = session.execute(select(MatchingOutboxRow.attempts)).scalars().all()
        session.rollback()
    stuck = sum(1 for a in rows if a >= MAX_ATTEMPTS)
    return {"pending": len(rows) - stuck, "failed": stuck}
