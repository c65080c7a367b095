"""The signal, match, notification and subject-search services, built once per app.

`build_domain_services` is the one builder (explicit dependencies: policy engine, key
store, database, pseudonymiser, directory cache, settings); `init_app` stores the result
and `domain()` is the one lookup views use. Until the typed container of
`gateway.services` replaces `Services.extra`, this is the only place that touches it
for these services, so rewiring them is a change here alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyStore
from gateway.matching.queries import MatchService, NotificationService
from gateway.policy.engine import PolicyEngine
from gateway.pseudonyms.service import Pseudonymiser
from gateway.services import EXTENSION, Services, services
from gateway.signals.directory import DirectoryCache
from gateway.signals.searches import SubjectSearchService
from gateway.signals.submission import IDEMPOTENCY_SECRET_LABEL, SignalService

DOMAIN_SERVICES = "domain"


@dataclass(frozen=True)
class DomainServices:
    signals: SignalService
    matches: MatchService
    notifications: NotificationService
    subject_search: SubjectSearchService


def _once(build: Callable[[], Pseudonymiser]) -> Callable[[], Pseudonymiser]:
    """Build on first use (unsealing the key needs the key store initialised), then reuse."""
    made: list[Pseudonymiser] = []

    def get() -> Pseudonymiser:
        if not made:
            made.append(build())
        return made[0]

    return get


def build_domain_services(
    *,
    settings: Settings,
    db: Database,
    keys: KeyStore,
    engine: PolicyEngine,
    catch_up: Callable[[], None],
) -> DomainServices:
    del settings  # nothing here depends on it yet; kept so the signature is the contract
    pseudonymiser = _once(lambda: Pseudonymiser.from_key_store(keys))
    return DomainServices(
        signals=SignalService(
            engine=engine,
            keys=keys,
            directory=DirectoryCache(db),
            pseudonymiser=pseudonymiser,
            idempotency_secret=keys.derive_secret(IDEMPOTENCY_SECRET_LABEL),
        ),
        matches=MatchService(engine),
        notifications=NotificationService(engine),
        subject_search=SubjectSearchService(
            engine=engine, pseudonymiser=pseudonymiser, catch_up=catch_up
        ),
    )


def init_app(app: Flask) -> None:
    """Build the services once (after `policy.init_app`: they take its engine)."""
    from gateway.audit.views import catch_up
    from gateway.policy.service import POLICY_SERVICE

    svc: Services = app.extensions[EXTENSION]
    svc.extra[DOMAIN_SERVICES] = build_domain_services(
        settings=svc.settings,
        db=svc.db,
        keys=svc.keys,
        engine=svc.extra[POLICY_SERVICE].engine,
        catch_up=catch_up,
    )


def domain() -> DomainServices:
    """The app's domain services (inside an app context)."""
    found: DomainServices = services().extra[DOMAIN_SERVICES]
    return found
