"""The audit API: checkpoint, verifier key, proofs, entries and exports.

Checkpoint, key and proofs are open to every valid access token, so partners can act
as witnesses. Entries are for `audit:read` (everything) or a partner (its own entries).
Every read of the log is itself an audit entry, written in a short transaction of its
own before the answer goes out, so a read that could not be logged is not served.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import wraps
from typing import Any, Literal, TypeVar

from flask import Blueprint, Response, stream_with_context
from pydantic import Field
from sqlalchemy import select

from gateway.actors import Actor
from gateway.api.models import ApiModel
from gateway.api.openapi import operation
from gateway.api.validation import json_response, parse_body, parse_query
from gateway.audit import export, rfc9162
from gateway.audit.entries import AuditEvent, Outcome, SubjectRef
from gateway.audit.errors import (
    InvalidCursor,
    LeafNotFound,
    LeafNotSequenced,
    TreeSizeBeyondCheckpoint,
)
from gateway.audit.models import AuditCheckpointRow, AuditEntryRow
from gateway.audit.note import VerifierKey, origin_for
from gateway.audit.queries import EntryFilter, entries_query, page, stream
from gateway.audit.sequencer import (
    has_pending,
    sequence_pending,
    signer_from,
)
from gateway.audit.service import record_event
from gateway.audit.tree import (
    latest_checkpoint,
    stored_consistency_proof,
    stored_inclusion_proof,
)
from gateway.crypto import ed25519
from gateway.errors import FieldError, InvalidInput, ProblemError
from gateway.keys import KeyPurpose
from gateway.security import current_actor
from gateway.services import services

bp = Blueprint("audit", __name__)
F = TypeVar("F", bound=Callable[..., Any])
TAGS = ("audit",)
TEXT = ("text/plain",)
MAX_LIMIT = 1000
CATCH_UP_BATCHES = 16


# --- models ----------------------------------------------------------------------------


class InclusionQuery(ApiModel):
    index: int | None = Field(default=None, ge=0, description="Leaf index (or give leafHash).")
    leaf_hash: str | None = Field(
        default=None, max_length=64, description="Base64 leaf hash, as in a receipt."
    )
    tree_size: int | None = Field(
        default=None, ge=1, description="Tree size; defaults to the latest checkpoint."
    )


class InclusionProof(ApiModel):
    index: int
    tree_size: int
    hashes: list[str] = Field(description="Base64 hashes of the RFC 9162 inclusion path.")


class ConsistencyQuery(ApiModel):
    first: int = Field(ge=1, description="The earlier tree size.")
    second: int = Field(ge=1, description="The later tree size.")


class ConsistencyProof(ApiModel):
    first: int
    second: int
    hashes: list[str] = Field(description="Base64 hashes of the RFC 9162 consistency proof.")


class FilterFields(ApiModel):
    actor_organisation: str | None = Field(default=None, max_length=64)
    actor_id: str | None = Field(default=None, max_length=128, description="A client or user id.")
    action: str | None = Field(default=None, max_length=64)
    outcome: Literal["success", "denied", "error"] | None = None
    from_: datetime | None = Field(default=None, alias="from", description="Time ≥ (RFC 3339).")
    until: datetime | None = Field(default=None, description="Time < (RFC 3339).")


class EntriesQuery(FilterFields):
    start: int | None = Field(default=None, ge=0, description="First index to return.")
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=64, description="`next` of a page.")


class EntrySearch(EntriesQuery):
    """A search in the body: subject references never go in a URI."""

    subject: str | None = Field(
        default=None, max_length=128, description="A subject reference (pseudonym)."
    )


class ExportQuery(FilterFields):
    format: Literal["jsonl", "csv", "ldv"] = "jsonl"


class AuditEntryItem(ApiModel):
    index: int
    leaf_hash: str = Field(description="Base64 RFC 9162 leaf hash.")
    data: str = Field(description="Base64 of the entry's RFC 8785 canonical bytes (the leaf).")
    entry: dict[str, Any]


class AuditEntryPage(ApiModel):
    entries: list[AuditEntryItem]
    next: str | None = Field(description="Cursor of the next page; null on the last page.")


# --- helpers -----------------------------------------------------------------------------


def _record(
    actor: Actor,
    outcome: Outcome,
    resource: str,
    detail: dict[str, Any],
    subjects: tuple[SubjectRef, ...] = (),
    action: str = "audit.read",
) -> None:
    with services().db.transaction() as session:
        record_event(
            session,
            AuditEvent(
                action=action,
                outcome=outcome,
                actor=actor,
                resource_type=resource,
                subjects=subjects,
                detail=detail,
            ),
        )


def audited(resource: str, action: str = "audit.read") -> Callable[[F], F]:
    """Log refused reads too (the successful ones log themselves, with what was read)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except ProblemError as exc:
                outcome: Outcome = "denied" if exc.status < 500 else "error"
                _record(current_actor(), outcome, resource, {"problem": exc.slug}, action=action)
                raise

        return wrapper  # type: ignore[return-value]

    return decorate


def catch_up() -> None:
    """Sequence what is pending before reading, so a reader sees every entry committed
    before its request (read-your-writes). Cheap when nothing is pending; on PostgreSQL
    it skips when another process holds the sequencer lock."""
    svc = services()
    if has_pending(svc.db):
        sequence_pending(
            svc.db, signer_from(svc.keys, svc.settings.issuer), max_batches=CATCH_UP_BATCHES
        )


def _checkpoint_size(session: Any) -> tuple[int, AuditCheckpointRow | None]:
    latest = latest_checkpoint(session)
    return (latest.size if latest is not None else 0), latest


def _beyond(name: str, size: int, checkpoint: int) -> TreeSizeBeyondCheckpoint:
    return TreeSizeBeyondCheckpoint(
        f"{name} {size} is larger than the latest checkpoint ({checkpoint} entries).",
        errors=[FieldError(f"/{name}", f"At most {checkpoint}", name)],
    )


_B64_HASH = re.compile(r"^[A-Za-z0-9+/]{43}$")


def _leaf_hash_param(value: str) -> bytes:
    """Base64 or base64url, padded or not; a `+` that arrived as a space is forgiven."""
    text = value.strip().replace(" ", "+").replace("-", "+").replace("_", "/").rstrip("=")
    if _B64_HASH.match(text):
        raw = base64.b64decode(text + "=")
        if len(raw) == rfc9162.HASH_SIZE:
            return raw
    raise InvalidInput(
        "leafHash must be a base64 SHA-256 hash (32 bytes).",
        errors=[FieldError("/leafHash", "Not a base64 32-byte hash", "leafHash")],
    )


def _encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"i{index}".encode()).rstrip(b"=").decode()


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("i") and text[1:].isdigit():
            return int(text[1:])
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    raise InvalidCursor(
        "The cursor is not one this API gave out.",
        errors=[FieldError("/cursor", "Unknown cursor", "cursor")],
    )


def _filter_of(query: FilterFields, subject: str | None = None) -> EntryFilter:
    return EntryFilter(
        actor_organisation=query.actor_organisation,
        actor_id=query.actor_id,
        action=query.action,
        outcome=query.outcome,
        subject=subject,
        since=query.from_,
        until=query.until,
    )


# --- checkpoint and key --------------------------------------------------------------


@bp.get("/v1/audit/checkpoint")
@operation(
    operation_id="getAuditCheckpoint",
    summary="The latest signed checkpoint (C2SP tlog-checkpoint signed note)",
    tags=TAGS,
    produces=TEXT,
    scopes=(),
)
@audited("audit-checkpoint")
def get_checkpoint() -> Response:
    svc = services()
    catch_up()
    with svc.db.session() as session:
        latest = latest_checkpoint(session)
        note = latest.note if latest is not None else None
        size = latest.size if latest is not None else 0
    if note is None:  # an empty log: its checkpoint is signed on demand
        note = signer_from(svc.keys, svc.settings.issuer).sign(0, rfc9162.EMPTY_ROOT)
    _record(current_actor(), "success", "audit-checkpoint", {"treeSize": size})
    return Response(note, mimetype="text/plain")


@bp.get("/v1/audit/key")
@operation(
    operation_id="getAuditKey",
    summary="The checkpoint verifier key (C2SP signed-note verifier key)",
    tags=TAGS,
    produces=TEXT,
    scopes=(),
)
def get_key() -> Response:
    svc = services()
    record = svc.keys.active(KeyPurpose.AUDIT_CHECKPOINT)
    assert record.public_jwk is not None
    key = VerifierKey(origin_for(svc.settings.issuer), ed25519.public_key_bytes(record.public_jwk))
    return Response(key.text() + "\n", mimetype="text/plain")


# --- proofs ----------------------------------------------------------------------------


@bp.get("/v1/audit/proofs/inclusion")
@operation(
    operation_id="getInclusionProof",
    summary="RFC 9162 inclusion proof of one entry (by index or leaf hash)",
    tags=TAGS,
    query=InclusionQuery,
    response=InclusionProof,
    scopes=(),
    errors=(404,),
)
@audited("audit-proof")
def get_inclusion_proof() -> Response:
    query = parse_query(InclusionQuery)
    catch_up()
    if (query.index is None) == (query.leaf_hash is None):
        raise InvalidInput(
            "Give exactly one of index and leafHash.",
            errors=[FieldError("/index", "Give index or leafHash, not both", "index")],
        )
    with services().db.session() as session:
        checkpoint, _ = _checkpoint_size(session)
        size = query.tree_size if query.tree_size is not None else checkpoint
        if size > checkpoint:
            raise _beyond("treeSize", size, checkpoint)
        if query.leaf_hash is not None:
            digest = _leaf_hash_param(query.leaf_hash)
            found = session.execute(
                select(AuditEntryRow.id, AuditEntryRow.seq).where(AuditEntryRow.leaf_hash == digest)
            ).first()
            if found is None:
                raise LeafNotFound("No audit entry has this leaf hash.")
            if found.seq is None or found.seq >= checkpoint:
                raise LeafNotSequenced(
                    "The entry has no index in a checkpoint yet; try again in a second.",
                    headers={"Retry-After": "1"},
                )
            index = int(found.seq)
            if index >= size:  # numbered after the tree the caller asked about
                raise LeafNotSequenced(
                    f"The entry is not in the tree of {size} entries; ask with a later "
                    "checkpoint's treeSize.",
                    headers={"Retry-After": "1"},
                )
        else:
            assert query.index is not None
            index = query.index
        if size == 0 or index >= size:
            raise InvalidInput(
                f"Index {index} is not in a tree of {size} entries.",
                errors=[FieldError("/index", f"Must be below treeSize ({size})", "index")],
            )
        hashes = stored_inclusion_proof(session, index, size)
    _record(current_actor(), "success", "audit-proof", {"index": index, "treeSize": size})
    return json_response(
        InclusionProof(index=index, tree_size=size, hashes=[export.b64(h) for h in hashes])
    )


@bp.get("/v1/audit/proofs/consistency")
@operation(
    operation_id="getConsistencyProof",
    summary="RFC 9162 consistency proof between two tree sizes",
    tags=TAGS,
    query=ConsistencyQuery,
    response=ConsistencyProof,
    scopes=(),
)
@audited("audit-proof")
def get_consistency_proof() -> Response:
    query = parse_query(ConsistencyQuery)
    catch_up()
    if query.first > query.second:
        raise InvalidInput(
            "first must not be larger than second.",
            errors=[FieldError("/first", "Must be at most second", "first")],
        )
    with services().db.session() as session:
        checkpoint, _ = _checkpoint_size(session)
        if query.second > checkpoint:
            raise _beyond("second", query.second, checkpoint)
        hashes = stored_consistency_proof(session, query.first, query.second)
    _record(
        current_actor(),
        "success",
        "audit-proof",
        {"first": query.first, "second": query.second},
    )
    return json_response(
        ConsistencyProof(
            first=query.first, second=query.second, hashes=[export.b64(h) for h in hashes]
        )
    )


# --- entries ---------------------------------------------------------------------------


def _entries_page(query: EntriesQuery, subject: str | None) -> Response:
    actor = current_actor()
    catch_up()
    if query.cursor is not None and query.start is not None:
        raise InvalidInput(
            "Give start or cursor, not both.",
            errors=[FieldError("/cursor", "Not together with start", "cursor")],
        )
    start = _decode_cursor(query.cursor) if query.cursor is not None else (query.start or 0)
    where = _filter_of(query, subject)
    with services().db.session() as session:
        found = page(session, entries_query(actor, where, start), query.limit + 1)
    more = len(found) > query.limit
    found = found[: query.limit]
    subjects = (SubjectRef(subject, "audit-subject-reference"),) if subject else ()
    _record(
        actor,
        "success",
        "audit-entries",
        {
            "filters": where.describe(),
            "start": start,
            "count": len(found),
            **({"first": found[0].index, "last": found[-1].index} if found else {}),
        },
        subjects,
    )
    body = AuditEntryPage(
        entries=[AuditEntryItem.model_validate(export.api_item(e)) for e in found],
        next=_encode_cursor(found[-1].index + 1) if more else None,
    )
    return json_response(body)


@bp.get("/v1/audit/entries")
@operation(
    operation_id="listAuditEntries",
    summary="Sequenced audit entries in index order (all with audit:read, else your own)",
    tags=TAGS,
    query=EntriesQuery,
    response=AuditEntryPage,
    scopes=(),
)
@audited("audit-entries")
def list_entries() -> Response:
    return _entries_page(parse_query(EntriesQuery), None)


@bp.post("/v1/audit/entries/_search")
@operation(
    operation_id="searchAuditEntries",
    summary="Search audit entries, also by subject reference (kept out of the URI)",
    tags=TAGS,
    request=EntrySearch,
    response=AuditEntryPage,
    status=200,
    scopes=(),
)
@audited("audit-entries")
def search_entries() -> Response:
    search = parse_body(EntrySearch)
    return _entries_page(search, search.subject)


@bp.get("/v1/audit/export")
@operation(
    operation_id="exportAuditEntries",
    summary="Export audit entries as JSON Lines, CSV or LDV records (JSON Lines)",
    tags=TAGS,
    query=ExportQuery,
    produces=("application/jsonl", "text/csv"),
    scopes=(),
)
@audited("audit-export", action="audit.export")
def export_entries() -> Response:
    query = parse_query(ExportQuery)
    catch_up()
    actor = current_actor()
    where = _filter_of(query)
    with services().db.session() as session:
        size, _ = _checkpoint_size(session)
    _record(
        actor,
        "success",
        "audit-export",
        {"format": query.format, "filters": where.describe(), "treeSize": size},
        action="audit.export",
    )
    stmt = entries_query(actor, where).where(AuditEntryRow.seq < size)
    lines = export.FORMATS[query.format]
    db = services().db

    def generate() -> Iterator[str]:
        with db.session() as session:
            yield from lines(stream(session, stmt))

    filename = f"audit-{query.format}-{size}.{'csv' if query.format == 'csv' else 'jsonl'}"
    return Response(
        stream_with_context(generate()),
        mimetype=export.MEDIA_TYPES[query.format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
