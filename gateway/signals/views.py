"""`/v1/signals`: parse the request, call `SignalService` once, answer.

Every rule (input checks, the policy, the envelope, storage and the audit entry) lives
in `gateway.signals.submission`; the web intake and the CLI call the same service. The
signal, its pseudonyms, its matching-outbox row and the audit entry commit together;
matching runs after the commit (`gateway.matching.processor`), so a hit costs what a
miss does. The view commits what the service added to the request's session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, TypeVar

from flask import Blueprint, Response, g, request

from gateway.api.openapi import operation
from gateway.api.validation import json_response, parse_query, read_body
from gateway.security import current_actor
from gateway.services import db_session, services
from gateway.signals.schemas import PageQuery, SignalCreate, SignalOut, SignalPage
from gateway.signals.submission import Submission, signal_out

bp = Blueprint("signals", __name__)
T = TypeVar("T")
D = TypeVar("D")


@bp.post("/v1/signals")
@operation(
    operation_id="createSignal",
    summary="Submit a signal about a person",
    description=(
        "The subject's identifiers are pseudonymised on arrival and never stored; the "
        "payload is stored as received after the meldpunt's copy was shown to decrypt. "
        "An `Idempotency-Key` header makes retries safe. In a category the policy "
        "reserves for conformance tests (`test: true` in `GET /v1/policy`) the signal is "
        "checked and audited the same way, then erased before the answer (`status: "
        "erased`, no retry record): never matched, shared or notified."
    ),
    tags=("signals",),
    request=SignalCreate,
    response=SignalOut,
    status=201,
    scopes=("signals:write",),
    errors=(422,),
    response_headers={"Location": "The URL of the new signal."},
)
def create() -> Response:
    actor = current_actor()
    body = read_body(SignalCreate)
    if body.model is not None:
        submission = Submission(
            reference=body.model.reference,
            category=body.model.category,
            subject=(
                body.model.subject.model_dump(by_alias=True, exclude_none=True)
                if body.model.subject is not None
                else None
            ),
            match_keys=body.model.match_keys,
            payload=body.model.payload,
            idempotency_key=request.headers.get("Idempotency-Key"),
            request_digest=hashlib.sha256(g.raw_body).digest(),
        )
    else:
        # The schema refused part of the body: the service still checks the rest, as
        # received, and answers every error at once (a field refused here it skips).
        data = body.data
        submission = Submission(
            reference=_of(data, "reference", str, ""),
            category=_of(data, "category", str, ""),
            subject=_of(data, "subject", dict, None),
            match_keys=_of(data, "matchKeys", dict, None),
            payload=_of(data, "payload", dict, {}),
            idempotency_key=request.headers.get("Idempotency-Key"),
            refused=body.errors,
        )
    session = db_session()
    done = services().domain.signals.submit(session, actor, submission)
    session.commit()
    location = f"{services().settings.issuer}/v1/signals/{done.signal.id}"
    return Response(done.body, 201, mimetype="application/json", headers={"Location": location})


def _of(data: Mapping[str, Any], name: str, kind: type[T], default: D) -> T | D:
    value = data.get(name)
    return value if isinstance(value, kind) else default


@bp.get("/v1/signals")
@operation(
    operation_id="listSignals",
    summary="List this organisation's signals",
    tags=("signals",),
    query=PageQuery,
    response=SignalPage,
    scopes=("signals:read",),
)
def list_own() -> Response:
    signals = services().domain.signals
    query = parse_query(PageQuery, checks={"cursor": signals.check_cursor})
    session = db_session()
    page = signals.list(session, current_actor(), query.cursor, query.limit)
    session.commit()
    return json_response(SignalPage(items=[signal_out(s) for s in page.items], next=page.next))


@bp.get("/v1/signals/<signal_id>")
@operation(
    operation_id="getSignal",
    summary="Read one of this organisation's signals",
    tags=("signals",),
    response=SignalOut,
    scopes=("signals:read",),
    errors=(404,),
)
def read(signal_id: str) -> Response:
    session = db_session()
    signal = services().domain.signals.get(session, current_actor(), signal_id)
    session.commit()
    return json_response(signal_out(signal))


@bp.delete("/v1/signals/<signal_id>")
@operation(
    operation_id="withdrawSignal",
    summary="Withdraw one of this organisation's signals",
    description=(
        "Payload and pseudonyms are deleted at once, so the signal never matches again; "
        "the audit entries stay."
    ),
    tags=("signals",),
    response=SignalOut,
    scopes=("signals:write",),
    errors=(404,),
)
def withdraw(signal_id: str) -> Response:
    session = db_session()
    done = services().domain.signals.withdraw(session, current_actor(), signal_id)
    session.commit()
    return Response(done.body, 200, mimetype="application/json")
