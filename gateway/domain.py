"""The signal, match, notification and subject-search services, built once per app.

`build_domain_services` is the one builder (explicit dependencies: policy engine, key
store, pseudonymiser, directory cache); the composition root (`gateway.app`) puts the
result in the typed container, where views find it as `services().domain`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.alerts.service import AlertService
from gateway.api.paging import CURSOR_SECRET_LABEL, CursorCodec
from gateway.cases.match_links import linked_matches
from gateway.keys import KeyStore
from gateway.matching.queries import MatchService, NotificationService
from gateway.policy.engine import PolicyEngine
from gateway.policy.history import PolicyHistoryService
from gateway.pseudonyms.service import Pseudonymiser
from gateway.reports.subject import SubjectReportService
from gateway.signals.directory import DirectoryCache
from gateway.signals.searches import SubjectSearchService
from gateway.signals.submission import IDEMPOTENCY_SECRET_LABEL, SignalService


@dataclass(frozen=True)
class DomainServices:
    signals: SignalService
    matches: MatchService
    notifications: NotificationService
    subject_search: SubjectSearchService
    subject_reports: SubjectReportService
    policy_history: PolicyHistoryService
    alerts: AlertService


def build_domain_services(
    *,
    keys: KeyStore,
    engine: PolicyEngine,
    directory: DirectoryCache,
    pseudonymiser: Callable[[], Pseudonymiser],
    catch_up: Callable[[], None],
    drain_matching: Callable[[], None] = lambda: None,
) -> DomainServices:
    """The services, given what they use (the container's directory cache and
    pseudonymiser, so each exists once per process). `catch_up` sequences pending audit
    entries, `drain_matching` does pending matching work, each before a read."""
    cursor_secret = keys.derive_secret(CURSOR_SECRET_LABEL)
    subject_search = SubjectSearchService(
        engine=engine, pseudonymiser=pseudonymiser, catch_up=catch_up
    )
    return DomainServices(
        signals=SignalService(
            engine=engine,
            keys=keys,
            directory=directory,
            pseudonymiser=pseudonymiser,
            idempotency_secret=keys.derive_secret(IDEMPOTENCY_SECRET_LABEL),
            cursors=CursorCodec(cursor_secret, "signals"),
        ),
        matches=MatchService(engine, linked=linked_matches, drain=drain_matching),
        notifications=NotificationService(engine, CursorCodec(cursor_secret, "notifications")),
        subject_search=subject_search,
        subject_reports=SubjectReportService(engine=engine, search=subject_search),
        policy_history=PolicyHistoryService(engine),
        alerts=AlertService(engine),
    )
