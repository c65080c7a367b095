"""The audit API: checkpoint, verifier key, proofs, entries and exports.

Each view translates HTTP to one `AuditService` call (`gateway.audit.access`), which
decides access, does the work and writes the read's audit entry; refusals are audited
there too. Checkpoint, key and proofs are open to every valid access token (partners
are witnesses); entries need `audit:read` or `signals:read` and the policy's
`audit.read`; exports `audit:read` and the policy's `audit.export`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, Response, stream_with_context
from pydantic import Field

from gateway.api.models import ApiModel
from gateway.api.openapi import operation
from gateway.api.paging import MAX_CURSOR_LENGTH, MAX_KEY
from gateway.api.validation import json_response, parse_body, parse_query
from gateway.audit import export
from gateway.audit.access import MAX_LIMIT, AuditService
from gateway.audit.queries import EntryFilter
from gateway.security import current_actor
from gateway.services import services

bp = Blueprint("audit", __name__)
TAGS = ("audit",)
TEXT = ("text/plain",)


# --- models ----------------------------------------------------------------------------


class InclusionQuery(ApiModel):
    index: int | None = Field(
        default=None, ge=0, le=MAX_KEY, description="Leaf index (or give leafHash)."
    )
    leaf_hash: str | None = Field(
        default=None, max_length=64, description="Base64 leaf hash, as in a receipt."
    )
    tree_size: int | None = Field(
        default=None, ge=1, le=MAX_KEY, description="Tree size; defaults to the latest checkpoint."
    )


class InclusionProof(ApiModel):
    index: int
    tree_size: int
    hashes: list[str] = Field(description="Base64 hashes of the RFC 9162 inclusion path.")


class ConsistencyQuery(ApiModel):
    first: int = Field(ge=1, le=MAX_KEY, description="The earlier tree size.")
    second: int = Field(ge=1, le=MAX_KEY, description="The later tree size.")


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
    start: int | None = Field(default=None, ge=0, le=MAX_KEY, description="First index to return.")
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(
        default=None, max_length=MAX_CURSOR_LENGTH, description="`next` of a page."
    )


class EntrySearch(EntriesQuery):
    """A search in the body: subject references never go in a URI."""

    # Printable ASCII only: the reference keys an HMAC (a NUL or non-ASCII one was a 500).
    subject: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[!-~]+$",
        description="A subject reference (pseudonym).",
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


# --- translation -------------------------------------------------------------------------


def audit_service() -> AuditService:
    found: AuditService = services().audit
    return found


def catch_up() -> None:
    """Sequence what is pending (read-your-writes) before a read outside this blueprint."""
    audit_service().catch_up()


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


def _entry_page(query: EntriesQuery, subject: str | None = None) -> Response:
    found = audit_service().entries(
        current_actor(),
        _filter_of(query, subject),
        start=query.start,
        cursor=query.cursor,
        limit=query.limit,
    )
    return json_response(
        AuditEntryPage(
            entries=[AuditEntryItem.model_validate(export.api_item(e)) for e in found.entries],
            next=found.next,
        )
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
def get_checkpoint() -> Response:
    return Response(audit_service().checkpoint(current_actor()), mimetype="text/plain")


@bp.get("/v1/audit/key")
@operation(
    operation_id="getAuditKey",
    summary="The checkpoint verifier key (C2SP signed-note verifier key)",
    tags=TAGS,
    produces=TEXT,
    scopes=(),
)
def get_key() -> Response:
    return Response(audit_service().verifier_key().text() + "\n", mimetype="text/plain")


class KeyChainItem(ApiModel):
    key: str = Field(description="C2SP signed-note verifier key.")
    tree_size: int | None = Field(description="Size of the first checkpoint it signed.")
    checkpoint: str | None = Field(
        description="The first checkpoint it signed, co-signed by the key before it."
    )


class KeyChain(ApiModel):
    keys: list[KeyChainItem]


@bp.get("/v1/audit/key-chain")
@operation(
    operation_id="getAuditKeyChain",
    summary="Every checkpoint key, oldest first, with the first checkpoint each signed",
    description=(
        "A rotated checkpoint key's first checkpoint is co-signed by the key before it: "
        "a witness that pinned an older key follows the chain to the current one."
    ),
    tags=TAGS,
    response=KeyChain,
    scopes=(),
)
def get_key_chain() -> Response:
    items = [
        KeyChainItem(key=link.key.text(), tree_size=link.tree_size, checkpoint=link.note)
        for link in audit_service().key_chain()
    ]
    return json_response(KeyChain(keys=items))


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
def get_inclusion_proof() -> Response:
    query = parse_query(InclusionQuery)
    proof = audit_service().inclusion_proof(
        current_actor(), index=query.index, leaf_hash=query.leaf_hash, tree_size=query.tree_size
    )
    hashes = [export.b64(h) for h in proof.hashes]
    return json_response(
        InclusionProof(index=proof.index, tree_size=proof.tree_size, hashes=hashes)
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
def get_consistency_proof() -> Response:
    query = parse_query(ConsistencyQuery)
    proof = audit_service().consistency_proof(current_actor(), query.first, query.second)
    hashes = [export.b64(h) for h in proof.hashes]
    return json_response(ConsistencyProof(first=proof.first, second=proof.second, hashes=hashes))


# --- entries ---------------------------------------------------------------------------


@bp.get("/v1/audit/entries")
@operation(
    operation_id="listAuditEntries",
    summary="Sequenced audit entries in index order (all with audit:read, else your own)",
    description=(
        "Needs scope `audit:read` or `signals:read` and the policy's `audit.read`; the rule "
        "that allows decides whether you see the whole log or your organisation's entries."
    ),
    tags=TAGS,
    query=EntriesQuery,
    response=AuditEntryPage,
    scopes=(),
    errors=(403,),
)
def list_entries() -> Response:
    return _entry_page(parse_query(EntriesQuery))


@bp.post("/v1/audit/entries/_search")
@operation(
    operation_id="searchAuditEntries",
    summary="Search audit entries, also by subject reference (kept out of the URI)",
    description="Access as for listAuditEntries.",
    tags=TAGS,
    request=EntrySearch,
    response=AuditEntryPage,
    status=200,
    scopes=(),
    errors=(403,),
)
def search_entries() -> Response:
    search = parse_body(EntrySearch)
    return _entry_page(search, search.subject)


@bp.get("/v1/audit/export")
@operation(
    operation_id="exportAuditEntries",
    summary="Export audit entries as JSON Lines, CSV or LDV records (JSON Lines)",
    description="Needs scope `audit:read` and the policy's `audit.export`.",
    tags=TAGS,
    query=ExportQuery,
    produces=("application/jsonl", "text/csv"),
    scopes=("audit:read",),
    errors=(403,),
)
def export_entries() -> Response:
    query = parse_query(ExportQuery)
    found = audit_service().export(current_actor(), _filter_of(query), query.format)
    return Response(
        stream_with_context(found.lines),
        mimetype=found.media_type,
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
    )


# --- wiring ----------------------------------------------------------------------------
