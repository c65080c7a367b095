"""`record_event`: the one way anything writes to the audit log.

It adds the entry to the caller's session, so the entry commits or rolls back with
the action it records: a failed write leaves neither, a committed write always has
its entry.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from flask import g, has_request_context
from sqlalchemy import Connection, Dialect, Table, insert
from sqlalchemy.orm import Session

from gateway.audit.entries import AuditEvent, TraceFields, build_entry, canonical_bytes, leaf_hash
from gateway.audit.models import AuditEntryRow, AuditSubjectRow
from gateway.db import READ_AUDIT, Database
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
    """The inserts of one entry, in `session`'s transaction."""
    entry = _Entry.of(event, now)
    # Pending ORM changes are flushed first, as before; then statements compiled once
    # per dialect, in the caller's transaction (the ORM's execute and Core's statement
    # cache cost more than the inserts themselves).
    session.flush()
    return entry.insert(session.connection())


def write_entry(db: Database, event: AuditEvent, now: datetime) -> Receipt:
    """One entry in a write transaction of its own (a read's, a refusal's), on a Core
    connection: an ORM session costs more than the insert. The entry is built before
    the transaction begins, so SQLite's write lock is held for the insert alone."""
    entry = _Entry.of(event, now)
    with db.write_connection() as connection:
        return entry.insert(connection)


@dataclass(frozen=True)
class _Entry:
    """An entry's row values and subject references, ready to insert."""

    digest: bytes
    values: dict[str, Any]
    subjects: list[str]

    @classmethod
    def of(cls, event: AuditEvent, now: datetime) -> _Entry:
        data = canonical_bytes(build_entry(event, _trace(), now))
        digest = leaf_hash(data)
        values = {
            "leaf_hash": digest,
            "data": data,
            "action": event.action,
            "outcome": event.outcome,
            "actor_id": event.actor.id,
            "actor_organisation": event.actor.organisation,
            "policy_rule": (event.policy_rule or "")[:128] or None,
            "purpose": (event.purpose or "")[:128] or None,
            "created_at": now,
        }
        return cls(digest, values, list(dict.fromkeys(s.id for s in event.subjects)))

    def insert(self, connection: Connection) -> Receipt:
        dialect, subjects = connection.dialect, self.subjects
        if dialect.name == "postgresql":
            # entry and subjects in one round trip
            statement = _statement(dialect, "entry+subjects" if subjects else "entry")
            connection.exec_driver_sql(
                statement.sql, statement.parameters(self.values, subjects=subjects or None)
            )
            return Receipt(self.digest)
        statement = _statement(dialect, "entry")
        result = connection.exec_driver_sql(statement.sql, statement.parameters(self.values))
        if subjects:
            entry_id = result.lastrowid
            connection.exec_driver_sql(
                _statement(dialect, "subjects").sql, [(entry_id, sid) for sid in subjects]
            )
        return Receipt(self.digest)


_ENTRY_COLUMNS = (
    "leaf_hash",
    "data",
    "action",
    "outcome",
    "actor_id",
    "actor_organisation",
    "policy_rule",
    "purpose",
    "created_at",
)


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled for one dialect: its SQL text, the order of its positional
    parameters (None: named) and the bind processors of its columns (as SQLAlchemy
    would apply them, e.g. SQLite's datetime to text)."""

    sql: str
    order: tuple[str, ...] | None
    processors: dict[str, Callable[[Any], Any]]

    def parameters(self, values: dict[str, Any], **more: Any) -> Any:
        done = {
            key: (process(value) if (process := self.processors.get(key)) else value)
            for key, value in values.items()
        }
        done.update(more)
        if self.order is None:
            return done
        return tuple(done[key] for key in self.order)


_COMPILED: dict[tuple[str, str, str], _Compiled] = {}
_COMPILED_LOCK = threading.Lock()


def _statement(dialect: Dialect, kind: str) -> _Compiled:
    key = (f"{dialect.name}+{dialect.driver}", dialect.paramstyle, kind)
    found = _COMPILED.get(key)
    if found is None:
        found = _compile(dialect, kind)
        with _COMPILED_LOCK:
            _COMPILED[key] = found
    return found


def _compile(dialect: Dialect, kind: str) -> _Compiled:
    if kind == "subjects":
        subjects = insert(_SUBJECTS).inline()
        compiled = subjects.compile(dialect=dialect, column_keys=["entry_id", "subject_id"])
        return _Compiled(compiled.string, None, {})
    # inline: no implicit RETURNING of the new id (only the subjects need it)
    compiled = insert(_ENTRIES).inline().compile(dialect=dialect, column_keys=list(_ENTRY_COLUMNS))
    processors: dict[str, Callable[[Any], Any]] = {}
    for name in _ENTRY_COLUMNS:
        process = _ENTRIES.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    sql = compiled.string
    if kind == "entry+subjects":  # PostgreSQL
        sql = (  # the compiled SQL of our own statement, no input
            f"WITH e AS ({sql} RETURNING audit_entries.id) "  # noqa: S608
            "INSERT INTO audit_subjects (entry_id, subject_id) "
            "SELECT e.id, s FROM e, unnest(%(subjects)s::varchar[]) AS s"
        )
    order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
    return _Compiled(sql, order, processors)
