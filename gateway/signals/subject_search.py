"""`POST /v1/subject-searches`: everything Ketenpoort holds about one person.

The basis for answering a data-subject access request (AVG art. 15): the privacy
officer's system sends the person's identifiers in the body (never in a URI), the
gateway turns them into the same pseudonyms as on submission, and answers with every
signal still holding one of them and every audit entry that names one of them —
withdrawn and expired signals included, through their audit entries. The identifiers
are forgotten when the request ends; the search itself is audited.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response
from pydantic import Field

from gateway.api.models import ApiModel
from gateway.api.openapi import operation
from gateway.api.validation import json_response, parse_body
from gateway.audit.export import api_item
from gateway.audit.queries import EntryFilter, entries_query, page
from gateway.audit.views import catch_up
from gateway.policy.engine import Resource
from gateway.policy.service import authorize, record_allowed
from gateway.security import current_actor
from gateway.services import db_session
from gateway.signals.schemas import SubjectIn
from gateway.signals.service import signals_by_pseudonyms, subject_refs
from gateway.signals.views import pseudonymiser

bp = Blueprint("subject_search", __name__)

MAX_ENTRIES = 10_000


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
    actor = current_actor()
    body = parse_body(SubjectSearch)
    pseudonyms = pseudonymiser().pseudonyms(
        body.subject.model_dump(by_alias=True, exclude_none=True)
    )
    catch_up()  # number entries committed before this request, so they can be found
    session = db_session()
    decision = authorize(session, actor, "subject.search", Resource(type="subject"))
    refs = subject_refs(pseudonyms)
    signals = signals_by_pseudonyms(session, pseudonyms.items())
    found: dict[int, FoundEntry] = {}
    for ref in refs:
        stmt = entries_query(actor, EntryFilter(subject=ref.id))
        for stored in page(session, stmt, MAX_ENTRIES):
            item = api_item(stored)
            found[stored.index] = FoundEntry(
                index=item["index"], leaf_hash=item["leafHash"], entry=item["entry"]
            )
    record_allowed(
        session,
        actor,
        decision,
        "subject.search",
        "subject",
        subjects=refs,
        detail={"signals": len(signals), "auditEntries": len(found)},
    )
    session.commit()
    return json_response(
        SubjectSearchResult(
            subject_references=[r.id for r in refs],
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
                for s in signals
            ],
            audit_entries=[found[i] for i in sorted(found)],
        )
    )
