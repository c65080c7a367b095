"""`/v1/signals`, `/v1/notifications` and `/v1/matches`.

A submission is checked in this order — schema, reference, category, subject, policy,
envelope — and then stored and audited in ONE transaction: the signal, its pseudonyms,
its matching-outbox row and the audit entry commit together or not at all; matching
runs after the commit (`gateway.matching.processor`), so a hit costs what a miss does. Raw
identifiers live only in this request's memory: they are turned into pseudonyms and
dropped, and the log pipeline redacts them should anything try to log them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, g, request

from gateway.actors import Actor
from gateway.api.openapi import operation
from gateway.api.validation import json_response, parse_body, parse_query
from gateway.errors import FieldError, InvalidInput, NotFound
from gateway.keys import KeyPurpose
from gateway.logs import looks_like_identifier
from gateway.matching.jobs import catch_up
from gateway.matching.service import list_matches, list_notifications
from gateway.policy.engine import Resource
from gateway.policy.service import authorize, decide, policy_engine, record_allowed
from gateway.pseudonyms.errors import InvalidSubject
from gateway.pseudonyms.normalise import PREFIXES, fold
from gateway.pseudonyms.service import Pseudonymiser
from gateway.security import current_actor
from gateway.services import db_session, services
from gateway.signals.directory import DirectoryCache
from gateway.signals.envelope import check_envelope
from gateway.signals.schemas import (
    MatchOut,
    MatchPage,
    MatchSignalOut,
    NotificationOut,
    NotificationPage,
    NotificationQuery,
    PageQuery,
    ReceiptOut,
    SignalCreate,
    SignalOut,
    SignalPage,
)
from gateway.signals.service import (
    NewSignal,
    Signal,
    create_signal,
    get_signal,
    list_signals,
    remember_response,
    signal_subject_refs,
    subject_refs,
    withdraw_signal,
)

bp = Blueprint("signals", __name__)

MELDPUNT = "meldpunt"
COORDINATOR = "coordinator"
PSEUDONYMISER = "pseudonymiser"
DIRECTORY_CACHE = "signals.directory"
IDEMPOTENCY_KEY_MAX = 128


def pseudonymiser() -> Pseudonymiser:
    """One per process: building it unseals the key, so never per request."""
    extra = services().extra
    if PSEUDONYMISER not in extra:
        extra[PSEUDONYMISER] = Pseudonymiser.from_key_store(services().keys)
    found: Pseudonymiser = extra[PSEUDONYMISER]
    return found


def _signal_out(signal: Signal, receipt: str | None = None) -> SignalOut:
    return SignalOut(
        id=signal.id,
        organisation=signal.organisation,
        reference=signal.reference,
        category=signal.category,
        status=signal.status,
        created_at=signal.created_at,
        expires_at=signal.expires_at,
        linkage_keys=list(signal.linkage_keys),
        receipt=ReceiptOut(leaf_hash=receipt) if receipt else None,
    )


_NOT_LETTERS = re.compile(r"[\W\d_]+")


def _subject_names(subject: Mapping[str, Any]) -> set[str]:
    """The subject's name words, folded; prefixes and words under 3 letters left out."""
    words: set[str] = set()
    for field in ("familyName", "givenNames"):
        value = subject.get(field)
        if isinstance(value, str):
            words.update(
                w for w in _NOT_LETTERS.split(fold(value)) if len(w) >= 3 and w not in PREFIXES
            )
    return words


def _holds_personal_data(text: str, names: set[str]) -> bool:
    """True when `text` has a BSN or date shape or one of the subject's own names.

    Partner-chosen strings (reference, idempotency key) are stored as given, so the
    subject's name in one would rest in the database; a name counts as a whole word,
    or anywhere in the text when it is long enough not to occur by accident.
    """
    if looks_like_identifier(text):
        return True
    folded = fold(text)
    words = set(_NOT_LETTERS.split(folded))
    return any(name in words or (len(name) >= 6 and name in folded) for name in names)


def _reference_errors(reference: str, names: set[str]) -> list[FieldError]:
    if not 1 <= len(reference) <= 64:
        return [FieldError("/reference", "Must be 1 to 64 characters")]
    if not all(c.isprintable() for c in reference) or reference != reference.strip():
        return [FieldError("/reference", "Must be printable characters without edge spaces")]
    if _holds_personal_data(reference, names):
        return [
            FieldError(
                "/reference",
                "Looks like personal data (a BSN, a date or the subject's name); "
                "use your own report number",
            )
        ]
    return []


def _idempotency_key(names: set[str]) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            "The Idempotency-Key header must be 1 to 128 printable ASCII characters.",
            errors=[FieldError("", "Invalid Idempotency-Key header", "Idempotency-Key")],
        )
    if _holds_personal_data(key, names):  # it is stored: no personal data in it
        raise InvalidInput(
            "The Idempotency-Key header looks like personal data; use a random value.",
            errors=[FieldError("", "Looks like personal data", "Idempotency-Key")],
        )
    return key


def directory_cache() -> DirectoryCache:
    """One per app and process (see `gateway.signals.directory`)."""
    extra = services().extra
    if DIRECTORY_CACHE not in extra:
        extra[DIRECTORY_CACHE] = DirectoryCache(services().db)
    found: DirectoryCache = extra[DIRECTORY_CACHE]
    return found


def _require_organisation(actor: Actor) -> str:
    if actor.organisation is None:  # only partner systems submit and own signals
        raise NotFound("No such resource for this caller.")
    return actor.organisation


@bp.post("/v1/signals")
@operation(
    operation_id="createSignal",
    summary="Submit a signal about a person",
    description=(
        "The subject's identifiers are pseudonymised on arrival and never stored; the "
        "payload is stored as received after the meldpunt's copy was shown to decrypt. "
        "An `Idempotency-Key` header makes retries safe."
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
    organisation = _require_organisation(actor)
    body = parse_body(SignalCreate)
    subject = body.subject.model_dump(by_alias=True, exclude_none=True)
    names = _subject_names(subject)
    idempotency_key = _idempotency_key(names)
    engine = policy_engine()
    category = engine.category(body.category)

    errors = _reference_errors(body.reference, names)
    if category is None:
        errors.append(FieldError("/category", "Not a category of the active policy"))
    try:
        pseudonyms = pseudonymiser().pseudonyms(subject)
    except InvalidSubject as exc:
        if not errors:
            raise
        errors.extend(exc.errors)
        pseudonyms = {}
    if errors:
        raise InvalidInput(
            f"The signal has {len(errors)} invalid value(s); see errors.", errors=errors
        )
    assert category is not None

    resource = Resource(type="signal", category=body.category, organisation=organisation)
    # The policy decides in memory; the request's write transaction (SQLite's write lock)
    # starts only once the checks below have passed, so it is held for the writes alone.
    decision = decide(actor, "signal.create", resource)
    if not decision.allowed:
        authorize(db_session(), actor, "signal.create", resource)  # records it, raises 403
    keys = services().keys
    meldpunt_key = keys.active(KeyPurpose.MELDPUNT_ENCRYPTION)
    check_envelope(
        body.payload,
        category_recipients=set(category.required_recipients) | {MELDPUNT},
        directory=directory_cache().view(),
        meldpunt_private_jwk=keys.private_jwk(meldpunt_key.kid),
    )
    linked: dict[str, bytes] = {
        f: p for f, p in pseudonyms.items() if f in set(category.linkage_keys)
    }
    if not linked:
        raise InvalidSubject(
            [FieldError("/subject", "No linkage key this category uses can be derived")]
        )
    session = db_session()
    created = create_signal(
        session,
        NewSignal(
            organisation=organisation,
            organisation_kind=actor.organisation_kind or "",
            reference=body.reference,
            category=body.category,
            pseudonyms=linked,
            pseudonym_key_id=pseudonymiser().kid or "",
            payload=json.dumps(body.payload, separators=(",", ":")),
            retention_days=category.retention_days,
            idempotency_key=idempotency_key,
            request_hash=hashlib.sha256(g.raw_body).digest() if idempotency_key else None,
        ),
    )
    signal = created.signal
    location = {"Location": f"{services().settings.issuer}/v1/signals/{signal.id}"}
    if not created.created and signal.stored_response is not None:
        session.commit()
        return Response(signal.stored_response, 201, mimetype="application/json", headers=location)
    subjects = subject_refs(linked)
    # The partner reads its own entry: it says what the partner did and nothing of
    # what the gateway found. The matching outcome is the gateway's own entry, written
    # by the outbox processor for every signal (hit or not, so the log's growth tells
    # nothing either) and readable by the meldpunt's privacy officer only.
    receipt = record_allowed(
        session,
        actor,
        decision,
        "signal.create",
        "signal",
        resource_id=signal.id,
        subjects=subjects,
        detail={"category": signal.category, "linkageKeys": list(signal.linkage_keys)},
    )
    out = _signal_out(signal, receipt.leaf_hash_b64)
    text = out.model_dump_json(by_alias=True, exclude_none=True)
    if idempotency_key is not None:  # only a retry with the key reads it back
        remember_response(session, signal.id, text)
    session.commit()
    return Response(text, 201, mimetype="application/json", headers=location)


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
    actor = current_actor()
    organisation = _require_organisation(actor)
    query = parse_query(PageQuery)
    session = db_session()
    decision = authorize(
        session, actor, "signal.list", Resource(type="signal", organisation=organisation)
    )
    page = list_signals(session, organisation, query.cursor, query.limit)
    record_allowed(
        session,
        actor,
        decision,
        "signal.list",
        "signal",
        detail={"count": len(page.items)},
    )
    session.commit()
    return json_response(SignalPage(items=[_signal_out(s) for s in page.items], next=page.next))


def _signal_resource(signal: Signal) -> Resource:
    return Resource(
        type="signal", id=signal.id, category=signal.category, organisation=signal.organisation
    )


def _own_signal(actor: Actor, signal_id: str) -> Signal:
    organisation = _require_organisation(actor)
    found = get_signal(db_session(), organisation, signal_id)
    if found is None:
        raise NotFound("No signal with this id for your organisation.")
    return found


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
    actor = current_actor()
    signal = _own_signal(actor, signal_id)
    session = db_session()
    decision = authorize(session, actor, "signal.read", _signal_resource(signal))
    record_allowed(
        session,
        actor,
        decision,
        "signal.read",
        "signal",
        resource_id=signal.id,
        subjects=signal_subject_refs(session, signal.id),
    )
    session.commit()
    return json_response(_signal_out(signal))


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
    actor = current_actor()
    signal = _own_signal(actor, signal_id)
    session = db_session()
    decision = authorize(session, actor, "signal.withdraw", _signal_resource(signal))
    removal = withdraw_signal(session, signal.organisation, signal.id)
    if removal is None:
        raise NotFound("No signal with this id for your organisation.")
    receipt = record_allowed(
        session,
        actor,
        decision,
        "signal.withdraw",
        "signal",
        resource_id=signal.id,
        subjects=removal.subjects,
    )
    session.commit()
    return json_response(_signal_out(removal.signal, receipt.leaf_hash_b64))


def _notification_out(item: Any) -> NotificationOut:
    extra: Mapping[str, Any] = item.extra or {}
    return NotificationOut(
        id=str(item.id),
        type=item.type,
        signal_id=item.signal_id,
        match_id=item.match_id,
        created_at=item.created_at,
        organisations=extra.get("organisations"),
        change=extra.get("change"),
    )


@bp.get("/v1/notifications")
@operation(
    operation_id="listNotifications",
    summary="Notifications for this organisation",
    description=(
        "Matches, withdrawals and expiries as the policy allows this organisation to learn "
        "of them. The meldpunt's systems read the coordinator's notifications."
    ),
    tags=("notifications",),
    query=NotificationQuery,
    response=NotificationPage,
    scopes=("notifications:read",),
)
def notifications() -> Response:
    actor = current_actor()
    organisation = _require_organisation(actor)
    query = parse_query(NotificationQuery)
    catch_up(actor)  # before the request's session: matching done after earlier commits
    session = db_session()
    decision = authorize(
        session,
        actor,
        "notification.read",
        Resource(type="notification", organisation=organisation),
    )
    recipient = COORDINATOR if actor.organisation_kind == MELDPUNT else organisation
    page = list_notifications(session, recipient, query.after, query.limit)
    record_allowed(
        session,
        actor,
        decision,
        "notification.read",
        "notification",
        detail={"count": len(page.items)},
    )
    session.commit()
    return json_response(
        NotificationPage(items=[_notification_out(n) for n in page.items], next=page.next)
    )


@bp.get("/v1/matches")
@operation(
    operation_id="listMatches",
    summary="Matches: signals of different partners about the same person",
    tags=("matches",),
    query=PageQuery,
    response=MatchPage,
    scopes=("cases:write",),
)
def matches() -> Response:
    actor = current_actor()
    query = parse_query(PageQuery)
    catch_up(actor)  # before the request's session: matching done after earlier commits
    session = db_session()
    decision = authorize(session, actor, "match.read", Resource(type="match"))
    page = list_matches(session, query.cursor, query.limit)
    record_allowed(
        session,
        actor,
        decision,
        "match.read",
        "match",
        detail={"matches": [m.id for m in page.items]},
    )
    session.commit()
    items = [
        MatchOut(
            id=m.id,
            signals=[
                MatchSignalOut(
                    id=s.id,
                    organisation=s.organisation,
                    category=s.category,
                    reference=s.reference,
                    status=s.status,
                )
                for s in m.signals
            ],
            linkage_keys=list(m.linkage_keys),
            created_at=m.created_at,
            updated_at=m.updated_at,
        )
        for m in page.items
    ]
    return json_response(MatchPage(items=items, next=page.next))
