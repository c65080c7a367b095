"""`GET /v1/directory`: every active organisation with its current encryption keys."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from pydantic import Field
from sqlalchemy.orm import Session

from gateway.api.models import ApiModel
from gateway.api.openapi import operation
from gateway.api.validation import json_response
from gateway.audit import AuditEvent, record_event
from gateway.partners.registry import active_directory
from gateway.security import current_actor
from gateway.services import services

bp = Blueprint("partners", __name__)


class Jwks(ApiModel):
    keys: list[dict[str, Any]] = Field(
        description="Public JWKs (RFC 7517) with `use: enc`; encrypt payloads to these."
    )


class DirectoryOrganisation(ApiModel):
    id: str = Field(description="Organisation id; the `org` claim of its access tokens.")
    name: str
    kind: str = Field(description="police, justice, care, education, municipality or meldpunt.")
    encryption_keys: Jwks


class Directory(ApiModel):
    organisations: list[DirectoryOrganisation]


@bp.get("/v1/directory")
@operation(
    operation_id="getDirectory",
    summary="Active organisations and their encryption keys",
    description="Every active partner organisation, the meldpunt included, with the "
    "public keys a payload must be encrypted to.",
    tags=("directory",),
    response=Directory,
    scopes=("directory:read",),
)
def get_directory() -> Response:
    # A write transaction from the start: the audit entry is a write, and on SQLite a
    # read transaction upgraded to a write can fail under concurrency.
    with services().db.transaction() as session:
        body = _directory(session)
    return json_response(body)


def _directory(session: Session) -> Directory:
    organisations = active_directory(session)
    body = Directory(
        organisations=[
            DirectoryOrganisation(
                id=o.id,
                name=o.name,
                kind=o.kind,
                encryption_keys=Jwks(keys=list(o.encryption_jwks.get("keys", []))),
            )
            for o in organisations
        ]
    )
    record_event(
        session,
        AuditEvent(
            action="directory.read",
            outcome="success",
            actor=current_actor(),
            resource_type="directory",
            detail={"organisations": len(organisations)},
        ),
    )
    return body
