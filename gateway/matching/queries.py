"""`MatchService` and `NotificationService`: the one way to read matches and notifications.

Each call takes the actor, asks the policy once, reads, and writes the audit entry with
the decision it got in the caller's session (the caller commits). Matching itself runs
on submission (`gateway.signals.service` / the outbox); this module only reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.api.paging import Page
from gateway.errors import NotFound
from gateway.matching.models import COORDINATOR
from gateway.matching.service import (
    Match,
    Notification,
    get_match,
    list_matches,
    list_notifications,
)
from gateway.policy.audited import record_decision, refuse
from gateway.policy.engine import Decision, PolicyEngine, Resource
from gateway.pseudonyms.detector import safe_uuid

MELDPUNT = "meldpunt"


def _decide(
    engine: PolicyEngine, session: Session, actor: Actor, action: str, resource: Resource
) -> Decision:
    decision = engine.decide(actor, action, resource)
    if not decision.allowed:
        refuse(session, actor, decision, resource)
    return decision


@dataclass
class MatchService:
    """Matches are for the meldpunt (its case system, its coordinators)."""

    engine: PolicyEngine

    def list(
        self, session: Session, actor: Actor, cursor: str | None, limit: int | None
    ) -> Page[Match]:
        resource = Resource(type="match")
        decision = _decide(self.engine, session, actor, "match.read", resource)
        page = list_matches(session, cursor, limit)
        record_decision(
            session, actor, decision, resource, detail={"matches": [m.id for m in page.items]}
        )
        return page

    def get(self, session: Session, actor: Actor, match_id: str) -> Match:
        """One match; an absorbed match's id leads to the match that absorbed it."""
        resource = Resource(type="match", id=safe_uuid(match_id))
        decision = _decide(self.engine, session, actor, "match.read", resource)
        found = get_match(session, match_id)
        if found is None:
            raise NotFound("No match with this id.")
        record_decision(session, actor, decision, Resource(type="match", id=found.id))
        return found


@dataclass
class NotificationService:
    engine: PolicyEngine

    @staticmethod
    def feed_of(actor: Actor) -> str | None:
        """The feed an actor reads: its organisation's, or for the meldpunt's systems the
        coordinator's role feed (a namespace no organisation id can enter)."""
        if actor.organisation is None:
            return None
        return COORDINATOR if actor.organisation_kind == MELDPUNT else actor.organisation

    def list(
        self, session: Session, actor: Actor, after: str | None, limit: int | None
    ) -> Page[Notification]:
        feed = self.feed_of(actor)
        resource = Resource(type="notification", organisation=actor.organisation)
        decision = _decide(self.engine, session, actor, "notification.read", resource)
        if feed is None:  # allowed, yet no feed of its own: refused, and audited as such
            refuse(session, actor, decision, resource, NotFound("No feed for this caller."))
        page = list_notifications(session, feed, after, limit)
        record_decision(session, actor, decision, resource, detail={"count": len(page.items)})
        return page
