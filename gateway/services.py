"""The app's services: one typed container, built once by `create_app`, looked up by views.

Views never construct their own dependencies; they call `services()` and, for the
database, `db_session()` which gives one session per request, closed at teardown.
Everything in the container is built in `gateway.app.create_app` (the composition
root) before the first request, so start-up order is written down in one place and a
missing service is a type error, not a `KeyError` at the first request.

The domain types are named here only for the type checker: this module sits below the
domain packages (their views import it), so it must not import them at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.config import Settings
from gateway.db import READ_AUDIT, Database
from gateway.keys import KeyStore

if TYPE_CHECKING:
    from gateway.audit.access import AuditService
    from gateway.audit.reads import ReadAudit
    from gateway.audit.runs import VerificationRuns
    from gateway.cases import CaseServices
    from gateway.domain import DomainServices
    from gateway.figures.service import FiguresService
    from gateway.jobs import BackgroundJob
    from gateway.oauth.server import OAuthService
    from gateway.ops.metrics import Metrics
    from gateway.policy.active import PolicyService
    from gateway.pseudonyms.service import PseudonymiserSource
    from gateway.signals.directory import DirectoryCache

#: The one `app.extensions` key this app uses.
EXTENSION = "ketenpoort"


class TokenValidator(Protocol):
    """Checks the current request's access token (see `gateway.oauth.resource`)."""

    def authenticate(self, required_scopes: tuple[str, ...]) -> Actor:
        """Raise `Unauthorized` or `Forbidden`, or return the authenticated actor."""
        ...


@dataclass(frozen=True)
class Services:
    """Every long-lived service of one app, built once by `create_app`."""

    settings: Settings
    db: Database
    keys: KeyStore
    metrics: Metrics
    policy: PolicyService
    oauth: OAuthService
    token_validator: TokenValidator
    #: The pseudonym key, unsealed on first use (`ketenpoort init` may create it later).
    pseudonyms: PseudonymiserSource
    directory: DirectoryCache
    #: Writes the audit entries of read requests apart, summarising identical ones.
    read_audit: ReadAudit
    #: The audit log's reads, proofs, exports and verification (the API and the pages).
    audit: AuditService
    #: Verification runs started from the privacy officer's page (background threads).
    verifications: VerificationRuns
    #: Cases, approvals, payload reads and shares (the API and the web pages).
    cases: CaseServices
    #: Signals, matches, notifications and subject searches (the API and the web pages).
    domain: DomainServices
    #: Published figures with small counts suppressed (`/v1/figures`, `/figures`).
    figures: FiguresService
    #: Readiness checks by name: each raises when its part is not ready.
    readiness: Mapping[str, Callable[[], None]]
    #: This process's background jobs (empty with KETENPOORT_BACKGROUND_JOBS=false).
    jobs: tuple[BackgroundJob, ...] = ()
    #: Built OpenAPI documents by issuer (a cache, filled on first request).
    openapi_documents: dict[str, dict[str, Any]] = field(default_factory=dict)


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION]
    return found


def services_of(app: Flask) -> Services:
    """The container of `app` (outside a request: tests, shutdown)."""
    found: Services = app.extensions[EXTENSION]
    return found


def stop_jobs(app: Flask, timeout: float = 5.0) -> bool:
    """Stop this app's background jobs and wait for each one's current turn (all are
    told first, so the wait is the slowest turn, not their sum). False when one is still
    running after `timeout`."""
    jobs = services_of(app).jobs
    for job in jobs:
        job.request_stop()
    return all([job.join(timeout) for job in jobs])


def close_app(app: Flask, timeout: float = 5.0) -> None:
    """Shut an app down in order: its jobs end their turn first, then the database goes
    (a job still in a turn would run on against a disposed engine, or a dropped schema)."""
    stop_jobs(app, timeout)
    services_of(app).db.dispose()


#: Requests that only read: their work never takes SQLite's write lock.
READ_METHODS = frozenset({"GET", "HEAD"})


def db_session() -> Session:
    """The request's session.

    A request that changes data takes SQLite's write lock at BEGIN (a read transaction
    that upgrades to a write halfway fails under concurrent writers in WAL mode), and
    its audit entry commits with its work. A read (GET) runs in a read transaction and
    its audit entry is written apart, in a short write transaction of its own
    (`gateway.audit.reads`), so polling never holds the write lock that submissions need.
    """
    session: Session | None = g.get("db_session")
    if session is None:
        found = services()
        if request.method in READ_METHODS:
            session = found.db.session(write=False)
            session.info[READ_AUDIT] = found.read_audit
        else:
            session = found.db.session(write=True)
        g.db_session = session
    return session


def close_request_session(_: BaseException | None = None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()
