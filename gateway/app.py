"""The app factory: nothing is created at import time, every test builds its own app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from gateway import oauth
from gateway.config import Settings, load_settings
from gateway.db import Database
from gateway.keys import KeyStore, load_master_key
from gateway.logs import configure_logging
from gateway.ops.metrics import Metrics
from gateway.security import check_every_route_is_protected
from gateway.services import EXTENSION, Services, close_request_session


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
    app.url_map.merge_slashes = False

    database = Database(settings.database_url)
    master = load_master_key(settings.keys_dir, settings.master_key, create=False)
    keys = KeyStore(settings.keys_dir, master)
    app.extensions[EXTENSION] = Services(settings=settings, db=database, keys=keys)
    app.extensions["ketenpoort_metrics"] = Metrics()
    app.teardown_appcontext(close_request_session)

    from gateway import audit, policy
    from gateway.api import conventions
    from gateway.api.views import bp as api_bp
    from gateway.oprf.views import bp as oprf_bp
    from gateway.ops.views import bp as ops_bp
    from gateway.partners.views import bp as partners_bp
    from gateway.signals import expiry
    from gateway.signals.subject_search import bp as subject_search_bp
    from gateway.signals.views import bp as signals_bp

    conventions.init_app(app)
    app.register_blueprint(ops_bp)
    app.register_blueprint(api_bp)
    audit.init_app(app)
    oauth.init_app(app)
    app.register_blueprint(partners_bp)
    policy.init_app(app)  # a broken policy file stops the start (PolicyError)
    app.register_blueprint(signals_bp)
    app.register_blueprint(subject_search_bp)
    app.register_blueprint(oprf_bp)
    expiry.init_app(app)
    check_every_route_is_protected(app)
    return app
