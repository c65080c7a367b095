"""The audit entry of a request that failed: every exception path leaves one.

A refusal on the input (400, 404, 406, 409, 413, 415, 422) is outcome `denied`; an
internal failure (5xx) is outcome `error`. The entry is written in a fresh transaction
after the request's own session is rolled back — the request's work failed, and its
rollback must not take the evidence with it (nor may its open write transaction block
the entry on SQLite).

Not here: an error whose entry was already written (`gateway.errors.mark_audited`, e.g.
the audit service's refusals; and every `PolicyDenied`, which the policy helpers raise
only after recording the denial with its rule), requests without an authenticated actor
(401s and unknown paths: the token refusals are counted and audited, bounded, by
`gateway.oauth.failures`), and 429s (counted in /metrics; an entry each would let a
flood write the log, which is what the limit prevents). The entry carries the route,
the problem's slug and status and how many input errors there were — never the input,
nor the JSON pointers of the errors (a pointer can name a caller-chosen key).
"""

from __future__ import annotations

from typing import Any

from flask import g, request

from gateway.actors import Actor
from gateway.audit.entries import AuditEvent, Outcome
from gateway.audit.service import record_event
from gateway.errors import PolicyDenied, ProblemError, is_audited, mark_audited
from gateway.logs import get_logger
from gateway.services import close_request_session, services

log = get_logger("gateway.http")

REFUSE = "request.refuse"
FAIL = "request.fail"
UNAUDITED_STATUSES = frozenset({401, 429})


def audit_failure(error: ProblemError, cause: BaseException | None = None) -> None:
    """Write the failed request's entry, once, unless it is one of the exceptions above."""
    actor: Actor | None = g.get("actor")
    if actor is None or is_audited(error) or (cause is not None and is_audited(cause)):
        return
    if isinstance(error, PolicyDenied):  # recorded by `gateway.policy` with its rule
        return
    if error.status in UNAUDITED_STATUSES:
        return
    outcome: Outcome = "denied" if error.status < 500 else "error"
    detail: dict[str, Any] = {
        "method": request.method,
        "status": error.status,
        "problem": error.slug,
    }
    if error.errors:
        detail["errorCount"] = len(error.errors)
    if cause is not None:
        detail["exception"] = type(cause).__name__
    route = request.url_rule.rule if request.url_rule is not None else None
    try:
        close_request_session()  # roll back the request's work first
        with services().db.transaction() as session:
            record_event(
                session,
                AuditEvent(
                    action=REFUSE if outcome == "denied" else FAIL,
                    outcome=outcome,
                    actor=actor,
                    resource_type="endpoint",
                    resource_id=route,
                    detail=detail,
                ),
            )
    except Exception as exc:  # the answer still goes out; the log line says what was lost
        log.error("failure not audited", problem=error.slug, error=type(exc).__name__)
        return
    mark_audited(error)
