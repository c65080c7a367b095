"""`MatchService` and `NotificationService`: the one way to read matches and notifications.

Each call takes the actor, asks the policy once, reads, and writes the audit entry with
the decision it got in the caller's session (the caller commits). Matching itself runs
on submission (`gateway.signals.service` / the outbox); this module only reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.api.paging import CursorCodec, Page
from gateway.errors import FieldError, InvalidInput, NotFound
from gateway.matching.models import COORDINATOR, DISMISSAL_REASONS, MATCH_STATES
from gateway.matching.service import (
    Match,
    MatchLinks,
    Notification,
    get_match,
    list_matches,
    list_notifications,
    set_match_state,
    with_supplied,
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


#: Which of the given matches are linked into a case (`gateway.cases.match_links`);
#: given by the composition root, since cases build on matches, not the other way.
LinkedMatches = Callable[[Session, Sequence[Match]], dict[str, MatchLinks]]
#: Stored states a derived "linked" replaces (a dismissal stays what it is).
_LINKABLE = frozenset({"new", "under-review", "confirmed"})


def _no_links(_session: Session, _matches: Sequence[Match]) -> dict[str, MatchLinks]:
    return {}


@dataclass
class MatchService:
    """Matches are for the meldpunt (its case system, its coordinators).

    Reading asks `match.read`; reviewing (under review, confirmed, dismissed with a
    reason code, or back to new) is case work and asks `case.write`. A match's state
    shows "linked" once it is in a case and every active signal of it is in one.
    """

    engine: PolicyEngine
    linked: LinkedMatches = field(default=_no_links)
    #: Does pending matching work (bounded) before a `fresh` list; the composition root
    #: gives the matching outbox's drain.
    drain: Callable[[], None] = field(default=lambda: None)

    def _with_links(self, session: Session, matches: Sequence[Match]) -> list[Match]:
        """Each match with the ids of its signals that cases hold, and "linked" for a
        reviewable one whose every active signal is in a case."""
        links = self.linked(session, matches) if matches else {}
        found: list[Match] = []
        for m in matches:
            link = links.get(m.id, MatchLinks())
            state = "linked" if m.state in _LINKABLE and link.linked(m) else m.state
            found.append(dataclasses.replace(m, state=state, in_cases=link.in_cases))
        return found

    def list(
        self,
        session: Session,
        actor: Actor,
        cursor: str | None,
        limit: int | None,
        *,
        fresh: bool = False,
    ) -> Page[Match]:
        """The matches, oldest first. `fresh`: first do the pending matching work, so the
        list shows every signal stored before (when the background job is off or behind).

        For `fresh` the caller's transaction so far is committed first: on SQLite the
        drain needs the write lock, and the list must be read after the drain's commit.
        """
        resource = Resource(type="match")
        decision = _decide(self.engine, session, actor, "match.read", resource)
        if fresh:
            session.commit()
            self.drain()
        page = list_matches(session, cursor, limit)
        record_decision(
            session, actor, decision, resource, detail={"matches": [m.id for m in page.items]}
        )
        return Page(self._with_links(session, page.items), page.next)

    def review(
        self,
        session: Session,
        actor: Actor,
        match_id: str,
        state: str,
        reason: str | None = None,
        *,
        now: datetime | None = None,
    ) -> Match:
        """Set a match's review state; "dismissed" needs one of `DISMISSAL_REASONS`.

        A dismissed match no longer grows, and its signals are never brought together
        again (`gateway.matching.service`). Audited with the state and reason code.
        """
        errors: list[FieldError] = []
        if state not in MATCH_STATES:
            errors.append(FieldError("/state", f"Must be one of {', '.join(MATCH_STATES)}"))
        if state == "dismissed" and reason not in DISMISSAL_REASONS:
            errors.append(FieldError("/reason", f"Must be one of {', '.join(DISMISSAL_REASONS)}"))
        if state != "dismissed" and reason is not None:
            errors.append(FieldError("/reason", "Only a dismissal takes a reason"))
        resource = Resource(type="match", id=safe_uuid(match_id))
        decision = _decide(self.engine, session, actor, "case.write", resource)
        if errors:
            raise InvalidInput("The review is invalid; see errors.", errors=errors)
        found = set_match_state(session, match_id, state, reason, now or datetime.now(UTC))
        if found is None:
            refuse(session, actor, decision, resource, NotFound("No match with this id."))
        detail = {"state": state} | ({"reason": reason} if state == "dismissed" else {})
        record_decision(
            session, actor, decision, Resource(type="match", id=found.id), detail=detail
        )
        return self._with_links(session, [found])[0]

    def get(self, session: Session, actor: Actor, match_id: str) -> Match:
        """One match; an absorbed match's id leads to the match that absorbed it."""
        resource = Resource(type="match", id=safe_uuid(match_id))
        decision = _decide(self.engine, session, actor, "match.read", resource)
        found = get_match(session, match_id)
        if found is None:
            raise NotFound("No match with this id.")
        record_decision(session, actor, decision, Resource(type="match", id=found.id))
        return self._with_links(session, [with_supplied(session, found)])[0]


@dataclass
class NotificationService:
    engine: PolicyEngine
    #: The feed's cursors and notification ids, opaque to the partner: a row id would
    #: show the rows written for others in between (`gateway.api.paging.CursorCodec`).
    cursors: CursorCodec

    def check_after(self, after: str) -> None:
        """An `after` of this feed, or `InvalidCursor` (checked with the rest of the query)."""
        self.cursors.decode(after, parameter="after")

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
        page = list_notifications(session, feed, after, limit, self.cursors)
        record_decision(session, actor, decision, resource, detail={"count": len(page.items)})
        return page
