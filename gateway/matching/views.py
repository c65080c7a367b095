"""`/v1/notifications` and `/v1/matches`: parse, call the service once, answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response

from gateway.api.openapi import operation
from gateway.api.paging import decode_cursor
from gateway.api.validation import json_response, parse_body, parse_query
from gateway.matching.jobs import catch_up
from gateway.matching.schemas import (
    MatchOut,
    MatchPage,
    MatchQuery,
    MatchReviewIn,
    MatchSignalOut,
    NotificationOut,
    NotificationPage,
    NotificationQuery,
)
from gateway.matching.service import Match, Notification
from gateway.security import current_actor
from gateway.services import db_session, services

bp = Blueprint("matching", __name__)


def notification_out(item: Notification) -> NotificationOut:
    extra: Mapping[str, Any] = item.extra or {}
    return NotificationOut(
        id=item.ref,
        type=item.type,
        signal_id=item.signal_id,
        match_id=item.match_id,
        created_at=item.created_at,
        organisations=extra.get("organisations"),
        change=extra.get("change"),
        share_id=extra.get("shareId"),
        signal_ids=extra.get("signalIds"),
    )


def match_out(m: Match) -> MatchOut:
    return MatchOut(
        id=m.id,
        signals=[
            MatchSignalOut(
                id=s.id,
                organisation=s.organisation,
                category=s.category,
                reference=s.reference,
                status=s.status,
                tier=s.tier,
            )
            for s in m.signals
        ],
        linkage_keys=list(m.linkage_keys),
        tier=m.tier,
        state=m.state,
        state_reason=m.state_reason,
        created_at=m.created_at,
        updated_at=m.updated_at,
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
    feed = services().domain.notifications
    query = parse_query(NotificationQuery, checks={"after": feed.check_after})
    catch_up(current_actor())  # before the session: on SQLite the drain takes the write lock
    session = db_session()
    page = feed.list(session, current_actor(), query.after, query.limit)
    session.commit()
    items = [notification_out(n) for n in page.items]
    return json_response(NotificationPage(items=items, next=page.next))


@bp.get("/v1/matches")
@operation(
    operation_id="listMatches",
    summary="Matches: signals of different partners about the same person",
    tags=("matches",),
    query=MatchQuery,
    response=MatchPage,
    scopes=("cases:write",),
)
def matches() -> Response:
    query = parse_query(MatchQuery, checks={"cursor": decode_cursor})
    catch_up(current_actor())
    session = db_session()
    page = services().domain.matches.list(session, current_actor(), query.cursor, query.limit)
    session.commit()
    return json_response(MatchPage(items=[match_out(m) for m in page.items], next=page.next))


@bp.get("/v1/matches/<match_id>")
@operation(
    operation_id="getMatch",
    summary="One match; an absorbed match's id leads to the match that absorbed it",
    tags=("matches",),
    response=MatchOut,
    scopes=("cases:write",),
    errors=(404,),
)
def match(match_id: str) -> Response:
    catch_up(current_actor())
    session = db_session()
    found = services().domain.matches.get(session, current_actor(), match_id)
    session.commit()
    return json_response(match_out(found))


@bp.patch("/v1/matches/<match_id>")
@operation(
    operation_id="reviewMatch",
    summary="Review a match: under review, confirmed, dismissed with a reason, or new",
    description=(
        "Audited. A dismissed match no longer grows, and no later signal brings its "
        "signals together again; each can still match other signals."
    ),
    tags=("matches",),
    request=MatchReviewIn,
    response=MatchOut,
    scopes=("cases:write",),
    errors=(404,),
)
def review(match_id: str) -> Response:
    body = parse_body(MatchReviewIn)
    session = db_session()
    found = services().domain.matches.review(
        session, current_actor(), match_id, body.state, body.reason
    )
    session.commit()
    return json_response(match_out(found))
