"""`/v1/cases` (the meldpunt's case systems, `cases:write`) and `/v1/shares` (partners).

Thin: each view parses, calls ONE service method with the caller's actor, commits and
shapes the answer. The web workspace calls the same services.
"""

from __future__ import annotations

from flask import Blueprint, Response

from gateway.api.openapi import operation
from gateway.api.paging import decode_cursor
from gateway.api.validation import json_response, parse_body, parse_query, read_body
from gateway.cases.schemas import (
    CaseCreate,
    CaseOut,
    CasePage,
    CaseSignalOut,
    CaseUpdateIn,
    LinkIn,
    NoteIn,
    NoteList,
    NoteOut,
    ReceivedShareOut,
    ShareCreate,
    SharedSignalOut,
    ShareOut,
    SharePage,
    UnlinkIn,
)
from gateway.cases.service import Case, CaseUpdate, NewCase, Note
from gateway.cases.shares import ReceivedShare, ShareOutcome
from gateway.logs import mark_sensitive
from gateway.security import current_actor
from gateway.services import db_session, services
from gateway.signals.schemas import PageQuery

bp = Blueprint("cases", __name__)

CASES = ("cases",)
WRITE = ("cases:write",)


def case_out(case: Case) -> CaseOut:
    return CaseOut(
        id=case.id,
        title=case.title,
        status=case.status,
        outcome=case.outcome,
        assignee=case.assignee,
        match_id=case.match_id,
        signals=[
            CaseSignalOut(
                id=s.id, organisation=s.organisation, category=s.category, reference=s.reference
            )
            for s in case.signals
        ],
        created_at=case.created_at,
        updated_at=case.updated_at,
    )


def _committed(case: Case, status: int = 200) -> Response:
    db_session().commit()
    return json_response(case_out(case), status)


@bp.post("/v1/cases")
@operation(
    operation_id="createCase",
    summary="Make a case from a match or from chosen signals",
    tags=CASES,
    request=CaseCreate,
    response=CaseOut,
    status=201,
    scopes=WRITE,
    response_headers={"Location": "The URL of the new case."},
)
def create() -> Response:
    body = read_body(CaseCreate)
    if body.model is not None:
        new = NewCase(body.model.title, tuple(body.model.signal_ids or ()), body.model.match_id)
    else:
        # The schema refused part of the body: the service checks the rest as received
        # and answers every error at once (what the schema refused it does not check).
        title, ids, match_id = (body.data.get(k) for k in ("title", "signalIds", "matchId"))
        new = NewCase(
            title if isinstance(title, str) else "",
            tuple(i if isinstance(i, str) else "" for i in ids) if isinstance(ids, list) else (),
            match_id if isinstance(match_id, str) else None,
            refused=body.errors,
        )
    case = services().cases.cases.create(db_session(), current_actor(), new)
    response = _committed(case, 201)
    response.headers["Location"] = f"{services().settings.issuer}/v1/cases/{case.id}"
    return response


@bp.get("/v1/cases")
@operation(
    operation_id="listCases",
    summary="List cases",
    tags=CASES,
    query=PageQuery,
    response=CasePage,
    scopes=WRITE,
)
def list_cases() -> Response:
    query = parse_query(PageQuery, checks={"cursor": decode_cursor})
    page = services().cases.cases.list(db_session(), current_actor(), query.cursor, query.limit)
    db_session().commit()
    return json_response(CasePage(items=[case_out(c) for c in page.items], next=page.next))


@bp.get("/v1/cases/<case_id>")
@operation(
    operation_id="getCase",
    summary="Read a case",
    tags=CASES,
    response=CaseOut,
    scopes=WRITE,
    errors=(404,),
)
def get_case(case_id: str) -> Response:
    return _committed(services().cases.cases.get(db_session(), current_actor(), case_id))


@bp.patch("/v1/cases/<case_id>")
@operation(
    operation_id="updateCase",
    summary="Change a case's status (closing needs an outcome) or assignee",
    tags=CASES,
    request=CaseUpdateIn,
    response=CaseOut,
    scopes=WRITE,
    errors=(404,),
)
def update_case(case_id: str) -> Response:
    body = parse_body(CaseUpdateIn)
    change = CaseUpdate(status=body.status, outcome=body.outcome, assignee=body.assignee)
    return _committed(services().cases.cases.update(db_session(), current_actor(), case_id, change))


@bp.post("/v1/cases/<case_id>/signals")
@operation(
    operation_id="linkCaseSignal",
    summary="Link a signal into a case, with a reason",
    tags=CASES,
    request=LinkIn,
    response=CaseOut,
    scopes=WRITE,
    errors=(404,),
)
def link(case_id: str) -> Response:
    body = parse_body(LinkIn)
    case = services().cases.cases.link(
        db_session(), current_actor(), case_id, body.signal_id, body.reason
    )
    return _committed(case)


@bp.delete("/v1/cases/<case_id>/signals/<signal_id>")
@operation(
    operation_id="unlinkCaseSignal",
    summary="Take a signal out of a case, with a reason",
    tags=CASES,
    request=UnlinkIn,
    response=CaseOut,
    scopes=WRITE,
    errors=(404,),
)
def unlink(case_id: str, signal_id: str) -> Response:
    body = parse_body(UnlinkIn)
    case = services().cases.cases.unlink(
        db_session(), current_actor(), case_id, signal_id, body.reason
    )
    return _committed(case)


def _note_out(note: Note) -> NoteOut:
    return NoteOut(id=note.id, author=note.author, created_at=note.created_at, text=note.text)


@bp.post("/v1/cases/<case_id>/notes")
@operation(
    operation_id="addCaseNote",
    summary="Add a note to a case (stored encrypted)",
    tags=CASES,
    request=NoteIn,
    response=NoteOut,
    status=201,
    scopes=WRITE,
    errors=(404,),
)
def add_note(case_id: str) -> Response:
    body = parse_body(NoteIn)
    mark_sensitive([body.text])
    note = services().cases.cases.add_note(db_session(), current_actor(), case_id, body.text)
    db_session().commit()
    return json_response(_note_out(note), 201)


@bp.get("/v1/cases/<case_id>/notes")
@operation(
    operation_id="listCaseNotes",
    summary="A case's notes, decrypted",
    tags=CASES,
    response=NoteList,
    scopes=WRITE,
    errors=(404,),
)
def list_notes(case_id: str) -> Response:
    notes = services().cases.cases.notes(db_session(), current_actor(), case_id)
    db_session().commit()
    return json_response(NoteList(items=[_note_out(n) for n in notes]))


def share_out(outcome: ShareOutcome) -> ShareOut:
    share = outcome.share
    return ShareOut(
        id=share.id,
        case_id=share.case_id,
        status=share.status,
        organisations=list(share.organisations),
        signal_ids=list(share.signal_ids),
        purpose=share.purpose,
        approval_id=outcome.approval_id,
        created_at=share.created_at,
    )


@bp.post("/v1/cases/<case_id>/shares")
@operation(
    operation_id="createCaseShare",
    summary="Share signals of a case with partner organisations",
    description=(
        "201: shared (each payload re-encrypted for each receiver's current keys, and the "
        "receivers notified). 202: the policy needs a second coordinator's approval "
        "first. 403 `policy-denied` names the rule that refused."
    ),
    tags=CASES,
    request=ShareCreate,
    response=ShareOut,
    status=201,
    other_statuses=(202,),
    scopes=WRITE,
    errors=(404,),
)
def create_share(case_id: str) -> Response:
    body = parse_body(ShareCreate)
    outcome = services().cases.shares.share(
        db_session(), current_actor(), case_id, body.organisations, body.signal_ids, body.purpose
    )
    db_session().commit()
    return json_response(share_out(outcome), 201 if outcome.status == "shared" else 202)


def received_out(share: ReceivedShare) -> ReceivedShareOut:
    return ReceivedShareOut(
        id=share.id,
        case_id=share.case_id,
        signals=[
            SharedSignalOut(id=s.id, category=s.category, payload=s.payload) for s in share.signals
        ],
        purpose=share.purpose,
        created_at=share.created_at,
    )


@bp.get("/v1/shares")
@operation(
    operation_id="listShares",
    summary="Shares with this organisation, each payload a JWE for its keys",
    tags=("shares",),
    query=PageQuery,
    response=SharePage,
    scopes=("shares:read",),
)
def list_shares() -> Response:
    query = parse_query(PageQuery, checks={"cursor": services().cases.shares.check_cursor})
    page = services().cases.shares.received(
        db_session(), current_actor(), query.cursor, query.limit
    )
    db_session().commit()
    return json_response(SharePage(items=[received_out(s) for s in page.items], next=page.next))
