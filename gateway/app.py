"""The app factory and composition root: every service is built here, once, in order.

Nothing is created at import time (every test builds its own app) and nothing is built
later inside a view: `create_app` builds the typed `Services` container, hands each
background job exactly what it needs, then registers the HTTP routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from gateway import web
from gateway.alerts.service import AlertCounter, AlertJob, AlertService
from gateway.api import conventions
from gateway.api.views import bp as api_bp
from gateway.audit.access import AuditService
from gateway.audit.failures import audit_failure
from gateway.audit.limits import RateLimitAudit
from gateway.audit.reads import ReadAudit
from gateway.audit.runs import VerificationRuns
from gateway.audit.sequencer import BackgroundSequencer, sequencing_backlog, signer_from
from gateway.audit.views import bp as audit_bp
from gateway.cases import build as build_case_services
from gateway.cases.views import bp as cases_bp
from gateway.config import Settings, load_settings
from gateway.db import Database
from gateway.domain import build_domain_services
from gateway.figures.service import FiguresService
from gateway.figures.views import bp as figures_bp
from gateway.jobs import BackgroundJob
from gateway.keys import KeyStore, load_master_key
from gateway.lifecycle.retention import RetentionJob, RetentionService
from gateway.logs import configure_logging
from gateway.matching.jobs import OutboxJob, drainer
from gateway.matching.processor import outbox_backlog
from gateway.matching.views import bp as matching_bp
from gateway.oauth.resource import GatewayTokenValidator
from gateway.oauth.server import OAuthService
from gateway.oauth.views import bp as oauth_bp
from gateway.oprf.views import bp as oprf_bp
from gateway.ops.metrics import BacklogCollector, DatabaseAway, Metrics
from gateway.ops.views import bp as ops_bp
from gateway.partners.views import bp as partners_bp
from gateway.policy.active import start_policy
from gateway.policy.audit_access import audit_decider
from gateway.policy.engine import PolicyEngine
from gateway.policy.views import bp as policy_bp
from gateway.pseudonyms.service import PseudonymiserSource
from gateway.ratelimit import addresses as proxies
from gateway.security import check_every_route_is_protected, enforce
from gateway.services import EXTENSION, Services, close_request_session
from gateway.signals.directory import DirectoryCache
from gateway.signals.subject_search import bp as subject_search_bp
from gateway.signals.views import bp as signals_bp


def create_app(
    overrides: Mapping[str, Any] | None = None, *, settings: Settings | None = None
) -> Flask:
    """Build a gateway app from the environment, with `overrides` applied on top."""
    settings = settings or load_settings(overrides=overrides)
    configure_logging(settings.log_level, settings.log_format)

    app = Flask(
        __name__,
        static_folder="web/static",
        template_folder="web/templates",
    )
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        TESTING=settings.testing,
        JSON_SORT_KEYS=False,
    )
    app.url_map.strict_slashes = True
    # X-Forwarded-For is believed from KETENPOORT_TRUSTED_PROXIES only (finding 4).
    proxies.install(app, settings.trusted_proxies)
    app.url_map.merge_slashes = False

    found = build_services(settings)
    app.extensions[EXTENSION] = found
    app.teardown_appcontext(close_request_session)
    register_routes(app)
    for job in found.jobs:
        job.start()
    return app


def build_services(settings: Settings) -> Services:
    """The container: settings, database, keys, the active policy (a broken policy file
    stops the start with `PolicyError`), OAuth, pseudonyms, the directory cache, readiness
    checks and — unless `KETENPOORT_BACKGROUND_JOBS=false` — the background jobs (not
    started yet)."""

    database = Database(settings.database_url)
    master = load_master_key(settings.keys_dir, settings.master_key, create=False)
    keys = KeyStore(settings.keys_dir, master)
    policy = start_policy(settings.policy, database)
    metrics = Metrics()
    away = DatabaseAway()  # one connect timeout per scrape during an outage, not three
    metrics.add_collector(AlertCounter(database, away))
    metrics.add_collector(
        BacklogCollector(
            {
                "matching": lambda: outbox_backlog(database),
                "sequencing": lambda: sequencing_backlog(database),
            },
            away=away,
        )
    )
    pseudonyms = PseudonymiserSource(keys)
    directory = DirectoryCache(database)
    limits_audit = RateLimitAudit(database)

    def rate_limited(client: str, endpoint: str) -> None:
        metrics.rate_limited(client, endpoint)
        limits_audit.record(client, endpoint)

    oauth = OAuthService(settings, database, keys, on_rate_limited=rate_limited)
    audit = AuditService(database, keys, settings.issuer, audit_decider(policy.engine))
    return Services(
        settings=settings,
        db=database,
        keys=keys,
        metrics=metrics,
        policy=policy,
        oauth=oauth,
        token_validator=GatewayTokenValidator(oauth),
        pseudonyms=pseudonyms,
        directory=directory,
        audit=audit,
        verifications=VerificationRuns(audit),
        read_audit=ReadAudit(database),
        cases=build_case_services(policy.engine, keys),
        domain=build_domain_services(
            keys=keys,
            engine=policy.engine,
            directory=directory,
            pseudonymiser=pseudonyms.get,
            catch_up=audit.catch_up,
            drain_matching=drainer(database, policy.engine),
        ),
        figures=FiguresService(policy.engine),
        readiness={"policy": lambda: policy.check_ready(database)},
        jobs=background_jobs(settings, database, keys, policy.engine),
    )


def background_jobs(
    settings: Settings, database: Database, keys: KeyStore, engine: PolicyEngine
) -> tuple[BackgroundJob, ...]:
    """The audit sequencer, retention (expiry and erasure), the matching outbox and the
    alert rules, each given what it uses and nothing more."""
    if not settings.background_jobs:
        return ()

    return (
        BackgroundSequencer(database, lambda: signer_from(keys, settings.issuer)),
        RetentionJob(RetentionService(database, engine, keys)),
        OutboxJob(database, engine),
        AlertJob(database, AlertService(engine)),
    )


def register_routes(app: Flask) -> None:
    """Every blueprint, the HTTP conventions, and the fail-closed route check."""

    conventions.init_app(app, enforce, audit_failure)
    for bp in (
        ops_bp,
        api_bp,
        audit_bp,
        oauth_bp,
        partners_bp,
        policy_bp,
        signals_bp,
        matching_bp,
        subject_search_bp,
        cases_bp,
        oprf_bp,
        figures_bp,
    ):
        app.register_blueprint(bp)
    web.init_app(app)  # the people's pages: sessions, CSRF, Dutch/English
    check_every_route_is_protected(app)
