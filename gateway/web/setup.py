"""What the web package's modules share: languages, the CSRF extension, the session cookie
name (kept apart from `gateway.web`'s `init_app`, which imports the pages)."""

from __future__ import annotations

from flask import request, session
from flask_wtf.csrf import CSRFProtect

LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"
SESSION_COOKIE = "ketenpoort_session"
csrf = CSRFProtect()
#: Modules that add pages to the `web` blueprint (`@bp.get(...)` with `@page(action)`);
#: imported before the blueprint is registered.
PAGE_MODULES: tuple[str, ...] = (
    "gateway.web.views",
    "gateway.web.cases",
    "gateway.web.reads",
    "gateway.web.audit",
    "gateway.web.officer",
    "gateway.web.figures",
    "gateway.web.intake",
    "gateway.web.match_review",
)


def select_language() -> str:
    """The language switch's choice, else the browser's (`Accept-Language`), else Dutch."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE
