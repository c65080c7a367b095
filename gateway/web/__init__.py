"""The people's side: server-rendered pages for coordinators and the privacy officer.

No external scripts, fonts or CDNs: everything works offline. The NL Design System's
component CSS is vendored under `static/vendor/` (`make vendor`), themed by our own
design tokens in `static/theme.css`. Dutch by default, English available.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask_babel import Babel

from gateway.services import EXTENSION, Services
from gateway.web.setup import (
    DEFAULT_LANGUAGE,
    PAGE_MODULES,
    SESSION_COOKIE,
    csrf,
    select_language,
)


def init_app(app: Flask) -> None:
    """Cookies, CSRF (only for the web pages: /v1 and /oauth take no CSRF token), Babel,
    and the blueprint. The cookie-signing key is derived from the master key."""
    svc: Services = app.extensions[EXTENSION]
    app.secret_key = svc.keys.derive_secret("web-session-cookie")
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=svc.settings.web_absolute_timeout),
        # checked in the web blueprint only (see views._protect)
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=svc.settings.web_absolute_timeout,
        # Referrer-Policy is no-referrer; SameSite=Strict and the token do the work
        WTF_CSRF_SSL_STRICT=False,
        BABEL_DEFAULT_LOCALE=DEFAULT_LANGUAGE,
        BABEL_DEFAULT_TIMEZONE="Europe/Amsterdam",
        BABEL_TRANSLATION_DIRECTORIES="web/translations",
    )
    csrf.init_app(app)
    Babel(app, locale_selector=select_language)

    from importlib import import_module

    from gateway.web.views import add_form_pages, bp

    for module in PAGE_MODULES:  # their routes join the blueprint before it is registered
        import_module(module)
    app.register_blueprint(bp)
    add_form_pages(app)
