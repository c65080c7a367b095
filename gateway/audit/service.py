"""`record_event`: the one way anything writes to the audit log.

It adds the entry to the caller's session, so the entry commits or rolls back with
the action it records: a failed write leaves neither, a committed write always has
its entry.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from flask import g, has_request_context
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from gateway.audit.entries import AuditEvent, TraceFields, build_entry, canonical_bytes, leaf_hash
from gateway.audit.models import AuditEntryRow, AuditSubjectRow
from gateway.db import READ_AUDIT
from gateway.logs import sensitive_values
from gateway.pseudonyms.detector import holds_personal_data, names_of

_ENTRIES = cast(Table, AuditEntryRow.__table__)
_SUBJECTS = cast(Table, AuditSubjectRow.__table__)


@dataclass(frozen=True)
class Receipt:
    leaf_hash: bytes

    def as_json(self) -> dict[str, str]:
        """The `receipt` object of a write response."""
        return {"leafHash": self.leaf_hash_b64}

    @property
    def leaf_hash_b64(self) -> str:
        return base64.b64encode(self.leaf_hash).decode("ascii")


def _caller_request_id() -> str | None:
    """The caller's X-Request-Id, unless it holds the request's own subject's name (the
    BSN and date shapes were refused when the request started)."""
    caller: str | None = g.get("caller_request_id")
    if caller is not None and holds_personal_data(caller, names_of(sensitive_values())):
        return None
    return caller


def _trace() -> TraceFields:
    if has_request_context() and "trace" in g:
        trace = g.trace
        caller = g.get("caller_trace")
        return TraceFields(
            trace.trace_id,
            trace.span_id,
            trace.parent_span_id,
            g.request_id,
            caller_request_id=_caller_request_id(),
            caller_trace_id=caller.trace_id if caller is not None else None,
            caller_span_id=caller.parent_span_id if caller is not None else None,
        )
    return TraceFields(secrets.token_hex(16), secrets.token_hex(8), None, None)


def record_event(session: Session, event: AuditEvent, *, now: datetime | None = None) -> Receipt:
    """Add the entry for `event` to `session`; the caller commits it with its action.

    A read request's session (see `gateway.services.db_session`) carries a `ReadAudit`:
    the entry is then written apart from the read, and identical reads are summarised.
    """
    now = now or datetime.now(UTC)
    reads = session.info.get(READ_AUDIT)
    if reads is not None:
        found: Receipt = reads.record(event, now)
        return found
    return insert_entry(session, event, now)


def insert_entry(session: Session, event: AuditEvent, now: datetime) -> Receipt:
    """The two inserts of one entry, in `session`'s transaction."""
    entry = build_entry(event, _trace(), now)
    data = canonical_bytes(entry)
    digest = leaf_hash(data)
    # Core statements in the caller's transaction (the ORM unit of work cost more than
    # the two inserts themselves); pending ORM changes are flushed first, as before.
    session.flush()
    entry_id = session.execute(
        insert(_ENTRIES).returning(_ENTRIES.c.id),
        {
            "leaf_hash": digest,
            "data": data,
            "action": event.action,
            "outcome": event.outcome,
            "actor_id": event.actor.id,
            "actor_organisation": event.actor.organisation,
            "policy_rule": (event.policy_rule or "")[:128] or None,
            "purpose": (event.purpose or "")[:128] or None,
            "created_at": now,
        },
    ).scalar_one()
    subjects = [
        {"entry_id": entry_id, "subject_id": sid}
        for sid in dict.fromkeys(s.id for s in event.subjects)
    ]
    if subjects:
        session.execute(insert(_SUBJECTS), subjects)
    return Receipt(digest)
