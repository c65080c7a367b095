"""`POST /v1/subject-searches`: everything Ketenpoort holds about one person.

The privacy officer's system sends the person's identifiers in the body (never in a
URI); `SubjectSearchService` does the search and audits it.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response
from pydantic import Field

from gateway.api.models import ApiModel
from gateway.api.openapi import operation
from gateway.api.validation import json_response, parse_body
from gateway.security import current_actor
from gateway.services import db_session, services
from gateway.signals.schemas import SubjectIn

bp = Blueprint("subject_search", __name__)


class SubjectSearch(ApiModel):
    subject: SubjectIn


class FoundSignal(ApiModel):
    id: str
    organisation: str
    category: str
    reference: str
    status: str
    created_at: datetime
    expires_at: datetime


class FoundEntry(ApiModel):
    index: int
    leaf_hash: str
    entry: dict[str, object]


class SubjectSearchResult(ApiModel):
    subject_references: list[str] = Field(
        description="The person's pseudonymised subject ids, as audit entries name them."
    )
    signals: list[FoundSignal]
    audit_entries: list[FoundEntry] = Field(
        description="Sequenced audit entries naming the person, in log order."
    )


@bp.post("/v1/subject-searches")
@operation(
    operation_id="searchSubject",
    summary="Find every signal and audit entry about one person (data-subject requests)",
    description=(
        "Identifiers go in the body and are pseudonymised exactly as on submission. "
        "For the meldpunt's privacy officer (scope audit:read); the search is audited."
    ),
    tags=("audit",),
    request=SubjectSearch,
    response=SubjectSearchResult,
    status=200,
    scopes=("audit:read",),
)
def search() -> Response:
    body = parse_body(SubjectSearch)
    subject = body.subject.model_dump(by_alias=True, exclude_none=True)
    found = services().domain.subject_search.search(db_session, current_actor(), subject)
    db_session().commit()
    return json_response(
        SubjectSearchResult(
            subject_references=list(found.subject_references),
            signals=[
                FoundSignal(
                    id=s.id,
                    organisation=s.organisation,
                    category=s.category,
                    reference=s.reference,
                    status=s.status,
                    created_at=s.created_at,
                    expires_at=s.expires_at,
                )
                for s in found.signals
            ],
            audit_entries=[
                FoundEntry(index=e.index, leaf_hash=e.leaf_hash, entry=e.entry)
                for e in found.audit_entries
            ],
        )
    )
