"""Retention: at the end of a category's retention a signal is erased, everywhere but
the audit log.

One run (`RetentionService.run`, called by `ketenpoort retention run` and by the
background job of every gateway) does, in order:

1. **expire** the active signals past `expiresAt` (`gateway.signals.expiry`): payload
   and pseudonyms go at once, each expiry is an audit entry, and the matching outbox
   tells the owner and the coordinator (and, as the policy's hit rules say, the partners
   in its matches) — the run drains the outbox so they hear of it before the rest goes;
2. **erase** every signal past `expiresAt` whose notifications are out: its idempotency
   record and stored response, its match memberships (a match left with fewer than two
   signals goes with them), its re-encrypted share copies, and its case links (the case
   keeps a tombstone: a signal of this category, linked then, erased now), and finally
   the row itself;
3. **shred**: the epoch key (`gateway.keys.epochs`) of every month that has ended and
   holds no stored signal any more is destroyed, so a backup of the database from before
   the erasure can no longer bring those payloads back. Each destruction is audited.
   Payloads stored before epochs existed are wrapped under their epoch key here too.

A run that changed something writes one `retention.run` audit entry with counts only
(per category and month; no signal id, no content). `dry_run=True` changes nothing and
reports what would go. Several processes may run at once: every batch locks the rows it
erases (`SKIP LOCKED`) and re-checks them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session

from gateway.actors import SYSTEM, Actor
from gateway.audit import AuditEvent, record_event
from gateway.cases.models import CaseErasureRow, CaseSignalRow, SharePayloadRow
from gateway.db import Database
from gateway.jobs import BackgroundJob
from gateway.keys import KeyStore
from gateway.keys.epochs import epoch_of, erasure_month, seal_payload
from gateway.logs import get_logger
from gateway.matching.models import MatchingOutboxRow, MatchMemberRow, MatchRow
from gateway.matching.processor import hit_policy_of, process_outbox
from gateway.matching.service import utc
from gateway.policy.engine import PolicyEngine
from gateway.signals.expiry import expire_signals
from gateway.signals.models import SignalPseudonymRow, SignalRow

log = get_logger(__name__)

BATCH = 500
INTERVAL_SECONDS = 60.0
_SIGNALS = cast(Table, SignalRow.__table__)


class Progress(Protocol):
    """Told how far a run is: `advance(done, total)` after every batch."""

    def __call__(self, done: int, total: int) -> None: ...


def _no_progress(done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class Group:
    """Signals of one category whose retention ends in one month ("YYYY-MM")."""

    category: str
    month: str
    signals: int

    def as_json(self) -> dict[str, Any]:
        return {"category": self.category, "month": self.month, "signals": self.signals}


@dataclass(frozen=True)
class RetentionReport:
    dry_run: bool
    now: datetime
    #: What is (with `dry_run`: would be) erased, per category and month.
    groups: tuple[Group, ...]
    expired: int = 0
    erased: int = 0
    #: Past retention, but its expiry is still to be told (erased by a later run).
    waiting: int = 0
    #: Epoch keys destroyed (with `dry_run`: that would be).
    epoch_keys: tuple[str, ...] = ()
    tombstones: int = 0
    matches_removed: int = 0
    #: Payloads stored before epochs, wrapped under their epoch key by this run.
    rewrapped: int = 0

    @property
    def due(self) -> int:
        return sum(g.signals for g in self.groups)

    def as_json(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "now": self.now.isoformat(),
            "due": self.due,
            "groups": [g.as_json() for g in self.groups],
            "expired": self.expired,
            "erased": self.erased,
            "waiting": self.waiting,
            "tombstones": self.tombstones,
            "matchesRemoved": self.matches_removed,
            "epochKeysDestroyed": list(self.epoch_keys),
            "rewrapped": self.rewrapped,
        }

    def summary(self) -> str:
        verb = "would erase" if self.dry_run else "erased"
        count = self.due if self.dry_run else self.erased
        shred = "would destroy" if self.dry_run else "destroyed"
        text = f"{verb} {count} signal(s); {shred} {len(self.epoch_keys)} epoch key(s)"
        if self.waiting:
            text += f"; {self.waiting} wait for their expiry notifications"
        return text


def _month_end(month: str) -> datetime:
    """The first moment after `month` ("YYYY-MM"), UTC."""
    year, number = (int(part) for part in month.split("-"))
    return datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)


@dataclass
class RetentionService:
    """Expires, erases and shreds what is past its retention (see the module docstring)."""

    db: Database
    engine: PolicyEngine
    keys: KeyStore
    batch: int = BATCH
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    # -- what is due -----------------------------------------------------------------------
    def due(self, now: datetime) -> tuple[Group, ...]:
        """Signals past their retention (any status), per category and erasure month."""
        counts: Counter[tuple[str, str]] = Counter()
        with self.db.session() as session:
            rows = session.execute(
                select(SignalRow.category, SignalRow.expires_at).where(SignalRow.expires_at <= now)
            )
            for category, expires_at in rows:
                counts[(category, erasure_month(utc(expires_at)))] += 1
            session.rollback()
        return tuple(Group(c, m, n) for (c, m), n in sorted(counts.items()))

    def shreddable(self, now: datetime, *, after_erasure: bool) -> list[str]:
        """Epoch keys of months that have ended and hold no signal that keeps a payload
        (`after_erasure=False`, for a dry run: none that would survive this run)."""
        found: list[str] = []
        with self.db.session() as session:
            for epoch in self.keys.epochs():
                if _month_end(epoch.month) > now:
                    continue
                query = select(func.count()).where(SignalRow.payload_epoch == epoch.kid)
                if not after_erasure:
                    query = query.where(SignalRow.expires_at > now)
                if not session.execute(query).scalar_one():
                    found.append(epoch.kid)
            session.rollback()
        return found

    # -- the run ---------------------------------------------------------------------------
    def run(
        self,
        *,
        now: datetime | None = None,
        dry_run: bool = False,
        actor: Actor = SYSTEM,
        progress: Progress = _no_progress,
        record_empty: bool = False,
        wait_for_outbox: bool = True,
    ) -> RetentionReport:
        """One run; `record_empty`: write the `retention.run` entry even when nothing
        changed (an operator's run is on record; the minutely job's empty turns are not)."""
        moment = utc(now) if now is not None else self.clock()
        groups = self.due(moment)
        if dry_run:
            return RetentionReport(
                True, moment, groups, epoch_keys=tuple(self.shreddable(moment, after_erasure=False))
            )
        expired = expire_signals(self.db, self.engine, moment)
        if expired:
            process_outbox(self.db, hit_policy_of(self.engine), wait=wait_for_outbox)
        total = sum(g.signals for g in groups)
        erased = tombstones = matches_removed = 0
        erased_groups: Counter[tuple[str, str]] = Counter()
        progress(0, total)
        while True:
            with self.db.transaction() as session:
                batch = self._erase_batch(session, moment)
            if batch is None:
                break
            erased += batch.erased
            tombstones += batch.tombstones
            matches_removed += batch.matches
            erased_groups.update(batch.groups)
            progress(erased, total)
        waiting = self._waiting(moment)
        destroyed = self._shred(moment, actor)
        rewrapped = self.rewrap_legacy()
        done_groups = tuple(Group(c, m, n) for (c, m), n in sorted(erased_groups.items()))
        report = RetentionReport(
            False,
            moment,
            done_groups,
            expired=expired,
            erased=erased,
            waiting=waiting,
            epoch_keys=tuple(destroyed),
            tombstones=tombstones,
            matches_removed=matches_removed,
            rewrapped=rewrapped,
        )
        if record_empty or expired or erased or destroyed or rewrapped:
            with self.db.transaction() as session:
                record_event(
                    session,
                    AuditEvent(
                        action="retention.run",
                        outcome="success",
                        actor=actor,
                        policy_digest=self.engine.digest,
                        detail={
                            "expired": expired,
                            "erased": erased,
                            "waiting": waiting,
                            "groups": [g.as_json() for g in done_groups],
                            "epochKeysDestroyed": list(destroyed),
                            "rewrapped": rewrapped,
                        },
                    ),
                    now=moment,
                )
        if erased or destroyed:
            log.info("retention run", expired=expired, erased=erased, epoch_keys=len(destroyed))
        return report

    def rewrap_legacy(self, limit: int | None = None) -> int:
        """Wrap payloads stored before epochs (plain JWE text) under their erasure month's
        epoch key, a batch per transaction, so they are crypto-shredded like the rest.
        Readers take either form, so this may run while the gateway serves."""
        done = 0
        while limit is None or done < limit:
            with self.db.transaction() as session:
                rows = list(
                    session.execute(
                        select(SignalRow)
                        .where(SignalRow.payload.is_not(None), SignalRow.payload_epoch.is_(None))
                        .order_by(SignalRow.pk)
                        .limit(self.batch)
                        .with_for_update(skip_locked=True)
                    ).scalars()
                )
                for row in rows:
                    assert row.payload is not None
                    if epoch_of(row.payload) is not None:  # wrapped, its column not set
                        row.payload_epoch = epoch_of(row.payload)
                        continue
                    row.payload, row.payload_epoch = seal_payload(
                        self.keys, row.payload, utc(row.expires_at)
                    )
            if not rows:
                break
            done += len(rows)
        return done

    def _waiting(self, now: datetime) -> int:
        with self.db.session() as session:
            count = session.execute(
                select(func.count()).where(SignalRow.expires_at <= now)
            ).scalar_one()
            session.rollback()
        return int(count)

    def _shred(self, now: datetime, actor: Actor) -> list[str]:
        """Destroy the epoch keys no stored signal needs any more, each audited: the entry
        commits only once the key file is gone (a failed deletion rolls it back)."""
        destroyed: list[str] = []
        for kid in self.shreddable(now, after_erasure=True):
            with self.db.transaction() as session:
                if session.execute(
                    select(func.count()).where(SignalRow.payload_epoch == kid)
                ).scalar_one():
                    continue  # a concurrent submission cannot add one (its month ended)
                record_event(
                    session,
                    AuditEvent(
                        action="key.destroy",
                        outcome="success",
                        actor=actor,
                        resource_type="epoch-key",
                        resource_id=kid,
                        detail={"reason": "every signal of its month is erased"},
                    ),
                    now=now,
                )
                session.flush()
                if self.keys.destroy_epoch(kid):
                    destroyed.append(kid)
                else:
                    session.rollback()
        return destroyed

    def _erase_batch(self, session: Session, now: datetime) -> _Batch | None:
        pending = select(MatchingOutboxRow.signal_pk)
        candidates = list(
            session.execute(
                select(SignalRow.pk)
                .where(
                    SignalRow.expires_at <= now,
                    SignalRow.status != "active",
                    SignalRow.pk.not_in(pending),
                )
                .order_by(SignalRow.pk)
                .limit(self.batch)
            ).scalars()
        )
        if not candidates:
            return None
        rows = list(
            session.execute(
                select(SignalRow)
                .where(SignalRow.pk.in_(candidates), SignalRow.status != "active")
                .order_by(SignalRow.pk)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            ).scalars()
        )
        if not rows:
            return None  # another process has them
        return erase_signals(session, rows, now)


@dataclass(frozen=True)
class _Batch:
    erased: int
    tombstones: int
    matches: int
    groups: Counter[tuple[str, str]]


def erase_signals(session: Session, rows: Sequence[SignalRow], now: datetime) -> _Batch:
    """Erase locked, no longer active signal rows and what hangs on them (not committed)."""
    pks = [r.pk for r in rows]
    ids = [r.id for r in rows]
    category = {r.pk: r.category for r in rows}
    links = session.execute(
        select(CaseSignalRow.case_pk, CaseSignalRow.signal_pk, CaseSignalRow.linked_at).where(
            CaseSignalRow.signal_pk.in_(pks)
        )
    ).all()
    for case_pk, signal_pk, linked_at in links:
        session.add(
            CaseErasureRow(
                case_pk=case_pk, category=category[signal_pk], linked_at=linked_at, erased_at=now
            )
        )
    session.execute(delete(CaseSignalRow).where(CaseSignalRow.signal_pk.in_(pks)))
    match_pks = set(
        session.execute(
            select(MatchMemberRow.match_pk).where(MatchMemberRow.signal_pk.in_(pks))
        ).scalars()
    )
    session.execute(delete(MatchMemberRow).where(MatchMemberRow.signal_pk.in_(pks)))
    gone: list[int] = []
    if match_pks:
        left = dict(
            session.execute(
                select(MatchMemberRow.match_pk, func.count())
                .where(MatchMemberRow.match_pk.in_(match_pks))
                .group_by(MatchMemberRow.match_pk)
            ).all()
        )
        gone = [pk for pk in match_pks if left.get(pk, 0) < 2]
        if gone:
            session.execute(delete(MatchMemberRow).where(MatchMemberRow.match_pk.in_(gone)))
            session.execute(delete(MatchRow).where(MatchRow.pk.in_(gone)))
    session.execute(delete(SharePayloadRow).where(SharePayloadRow.signal_id.in_(ids)))
    session.execute(
        update(SignalRow)
        .where(SignalRow.repeat_of.in_(ids))
        .values(repeat_of=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(SignalPseudonymRow).where(SignalPseudonymRow.signal_pk.in_(pks)))
    session.execute(delete(MatchingOutboxRow).where(MatchingOutboxRow.signal_pk.in_(pks)))
    groups: Counter[tuple[str, str]] = Counter(
        (r.category, erasure_month(utc(r.expires_at))) for r in rows
    )
    for row in rows:
        session.expunge(row)
    session.execute(delete(_SIGNALS).where(_SIGNALS.c.pk.in_(pks)))
    return _Batch(len(rows), len(links), len(gone), groups)


class RetentionJob(BackgroundJob):
    """Runs the retention service every minute, as a background job of every gateway."""

    name = "retention"

    def __init__(self, service: RetentionService, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__(interval)
        self._service = service

    def step(self) -> bool:
        self._service.run(wait_for_outbox=False)
        return False
