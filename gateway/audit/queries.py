"""Reading the sequenced log: filters for the privacy officer, visibility for partners."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit.models import AuditEntryRow, AuditSubjectRow

AUDIT_READ = "audit:read"


@dataclass(frozen=True)
class EntryFilter:
    actor_organisation: str | None = None
    actor_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    policy_rule: str | None = None
    purpose: str | None = None
    #: Any of these subject references (one person's pseudonyms); like `subject`.
    subjects: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The filters as they go into the audit entry of the read (no subject id)."""
        found: dict[str, Any] = {}
        for name in (
            "actor_organisation",
            "actor_id",
            "action",
            "outcome",
            "policy_rule",
            "purpose",
        ):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value.isoformat()
        if self.subject is not None or self.subjects:
            found["subject"] = True  # the reference itself is in the entry's subjects
        return found


def sees_everything(actor: Actor) -> bool:
    return AUDIT_READ in actor.scopes


def entries_query(
    actor: Actor, where: EntryFilter, start: int = 0
) -> Select[int | None, bytes, bytes]:
    """Sequenced entries from `start` that `actor` may see by its scopes (the CLI's export;
    the API decides visibility with the policy, see `AuditService`)."""
    if sees_everything(actor):
        return visible_entries(where, start, organisation=None, whole_log=True)
    return visible_entries(where, start, organisation=actor.organisation)


def visible_entries(
    where: EntryFilter, start: int = 0, *, organisation: str | None, whole_log: bool = False
) -> Select[int | None, bytes, bytes]:
    """Sequenced entries from `start` in index order that `where` picks: the whole log
    when `whole_log`, else only entries whose actor belongs to `organisation` (none if None)."""
    row = AuditEntryRow
    stmt: Select[int | None, bytes, bytes] = (
        select(row.seq, row.leaf_hash, row.data)
        .where(row.seq.is_not(None), row.seq >= start)
        .order_by(row.seq)
    )
    if not whole_log:
        if organisation is None:
            return stmt.where(row.id.is_(None))  # nothing
        stmt = stmt.where(row.actor_organisation == organisation)
    if where.actor_organisation is not None:
        stmt = stmt.where(row.actor_organisation == where.actor_organisation)
    if where.actor_id is not None:
        stmt = stmt.where(row.actor_id == where.actor_id)
    if where.action is not None:
        stmt = stmt.where(row.action == where.action)
    if where.outcome is not None:
        stmt = stmt.where(row.outcome == where.outcome)
    if where.policy_rule is not None:
        stmt = stmt.where(row.policy_rule == where.policy_rule)
    if where.purpose is not None:
        stmt = stmt.where(row.purpose == where.purpose)
    if where.since is not None:
        stmt = stmt.where(row.created_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(row.created_at < where.until)
    if where.subject is not None:
        stmt = stmt.where(
            row.id.in_(
                select(AuditSubjectRow.entry_id).where(AuditSubjectRow.subject_id == where.subject)
            )
        )
    if where.subjects:
        stmt = stmt.where(
            row.id.in_(
                select(AuditSubjectRow.entry_id).where(
                    AuditSubjectRow.subject_id.in_(where.subjects)
                )
            )
        )
    return stmt


@dataclass(frozen=True)
class StoredEntry:
    index: int
    leaf_hash: bytes
    data: bytes


def page(session: Session, stmt: Select[int | None, bytes, bytes], limit: int) -> list[StoredEntry]:
    return [
        StoredEntry(int(s or 0), bytes(h), bytes(d))
        for s, h, d in session.execute(stmt.limit(limit))
    ]


def stream(
    session: Session, stmt: Select[int | None, bytes, bytes], chunk: int = 2000
) -> Iterator[StoredEntry]:
    """Every selected entry, read in chunks by index (no long-held server cursor)."""
    last = -1
    while True:
        batch = page(session, stmt.where(AuditEntryRow.seq > last), chunk)
        yield from batch
        if len(batch) < chunk:
            return
        last = batch[-1].index
