"""The web pages: each view reads a form, calls a service, renders a template.

Before every page: the session is resumed (or ended by a time-out, audited) and an
unsafe method must carry the CSRF token. A page the role may not use answers 403 and
its denial is an audit entry with the policy rule, as in the API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, ParamSpec

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException
from werkzeug.wrappers import Response as BaseResponse

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.db import database_unavailable
from gateway.errors import PROBLEM_MEDIA_TYPE, DatabaseUnavailable, ProblemError, SignedOut
from gateway.logs import get_logger
from gateway.policy.engine import Resource
from gateway.policy.service import decide, decide_and_record
from gateway.services import db_session, services
from gateway.users import accounts
from gateway.users.models import UserRow
from gateway.web.forms import LanguageForm, LoginForm, NewPasswordForm
from gateway.web.labels import organisation_names
from gateway.web.setup import LANGUAGES, csrf

log = get_logger("gateway.web")
bp = Blueprint("web", __name__)
P = ParamSpec("P")
#: How long a person has to replace the one-time password after signing in with it.
PASSWORD_CHANGE_WINDOW = timedelta(minutes=5)
ROLE_NAMES = {
    "coordinator": _l("Coordinator"),
    "privacy-officer": _l("Privacy officer"),
    "admin": _l("Administrator"),
    "professional": _l("Professional"),
}


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: Any  # a lazy string, translated when rendered
    action: str  # the policy action the page needs
    #: Further pages of the same section (marked current in the menu too).
    also: tuple[str, ...] = ()
    #: Instead of asking about `action` on a page: may this actor use the page?
    allows: Callable[[Actor], bool] | None = None

    @property
    def endpoints(self) -> tuple[str, ...]:
        return (self.endpoint, *self.also)


#: The navigation; an item shows when its page exists and the role may use it.
NAV = (
    NavItem("web.matches", _l("Matches"), "match.read", also=("web.match",)),
    NavItem("web.cases", _l("Cases"), "case.write"),
    NavItem("web.approvals", _l("Approvals"), "case.write"),
    NavItem(
        "web.audit",
        _l("Audit"),
        "audit.read",
        also=("web.audit_entry", "web.audit_verifications"),
    ),
    NavItem("web.subject_report", _l("Subject report"), "subject.search"),
    NavItem("web.policy", _l("Policy"), "policy.read"),
    NavItem("web.figures", _l("Figures"), "figures.read"),
    NavItem("web.alerts", _l("Alerts"), "audit.read"),
    NavItem(
        "web.intake",
        _l("Report a signal"),
        "signal.create",
        allows=lambda a: bool(filing_categories(a)),
    ),
)
#: The match queue's order of review states (a stable sort keeps newest first within).
QUEUE_ORDER = {"new": 0, "under-review": 1, "confirmed": 2, "linked": 3, "dismissed": 4}
#: Privacy officers see the agreement in their menu; everyone may read it.
_NAV_ROLES = {"web.policy": {"privacy-officer"}, "web.alerts": {"privacy-officer"}}


def _now() -> datetime:
    return datetime.now(UTC)


def current_user() -> UserRow | None:
    user: UserRow | None = g.get("web_user")
    return user


def current_actor() -> Actor | None:
    user = current_user()
    return accounts.actor_of(user) if user is not None else None


def filing_categories(actor: Actor) -> list[str]:
    """The categories the policy lets this actor file a signal in (the web intake); a
    category reserved for conformance tests is for partner systems only."""
    names = services().policy.engine.policy.categories
    return [
        name
        for name, category in names.items()
        if not category.test
        and decide(
            actor,
            "signal.create",
            Resource(type="signal", category=name, organisation=actor.organisation),
        ).allowed
    ]


def nav_items(user: UserRow | None) -> list[NavItem]:
    if user is None:
        return []
    actor = accounts.actor_of(user)
    return [
        item
        for item in NAV
        if item.endpoint in current_app.view_functions
        and user.role in _NAV_ROLES.get(item.endpoint, {user.role})
        and (
            item.allows(actor)
            if item.allows is not None
            else decide(actor, item.action, Resource(type="page")).allowed
        )
    ]


def _fresh_cookie() -> None:
    """Drop everything in the cookie (session id, CSRF token, pending step) but the
    language: at sign-in, sign-out and time-out."""
    lang = session.get("lang")
    session.clear()
    if lang in LANGUAGES:
        session["lang"] = lang


@bp.before_request
def _resume_and_protect() -> None:
    """Resume the session (time-outs end it, audited), then check the CSRF token."""
    g.web_user = None
    token = session.get("sid")
    if isinstance(token, str):
        settings = services().settings
        # a short write transaction of its own (SQLite: BEGIN IMMEDIATE), so that the
        # view's own transaction still starts with the write lock
        with services().db.transaction() as db:
            resumed = accounts.resume_session(
                db,
                token,
                now=_now(),
                idle=settings.web_idle_timeout,
                absolute=settings.web_absolute_timeout,
            )
        if resumed.user is None:
            _fresh_cookie()
            if resumed.timed_out:
                flash(_("Your session has expired. Please sign in again."), "info")
        else:
            g.web_user = resumed.user
            g.session_left = resumed
    csrf.protect()


@bp.context_processor
def _layout() -> dict[str, Any]:
    """What the base layout needs: who is signed in, the menu, the language."""
    from flask_babel import get_locale

    user = current_user()
    resumed = g.get("session_left")
    return {
        "web_user": user,
        "session_expires_in": resumed.expires_in if resumed is not None else 0,
        "session_warn_before": session_warning_lead(services().settings.web_idle_timeout),
        "role_name": ROLE_NAMES.get(user.role, user.role) if user is not None else None,
        "nav": nav_items(user),
        "lang": str(get_locale() or "nl"),
        "languages": {"nl": "Nederlands", "en": "English"},
    }


def _render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), status


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    return _render("web/error.html", status, title=title, message=message)


def _unavailable_page() -> tuple[str, int, dict[str, str]]:
    """The database cannot be reached or written: 503 with Retry-After, nothing saved."""
    page, status = _error_page(
        503,
        _("Temporarily unavailable"),
        _("The gateway cannot reach its database. Nothing was saved; try again shortly."),
    )
    return page, status, {"Retry-After": str(DatabaseUnavailable.retry_after)}


@bp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    try:
        db = db_session()
        db.rollback()
        record_event(
            db,
            AuditEvent(
                action="web.csrf-refused",
                outcome="denied",
                actor=current_actor() or accounts.UNKNOWN,
                resource_type="page",
                resource_id=request.url_rule.rule if request.url_rule else None,
            ),
        )
        db.commit()
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        log.warning("database unavailable", error=type(exc).__name__)
        return _unavailable_page()  # the refusal cannot be audited: refuse as unavailable
    return _error_page(
        400,
        _("This form has expired"),
        _(
            "The form was not accepted (its security token is missing or expired). "
            "Go back, reload the page and try again."
        ),
    )


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    status = error.code or 500
    if status == 404:
        return _error_page(404, _("Page not found"), _("There is no page at this address."))
    return _error_page(status, _("Something went wrong"), _("The request could not be handled."))


@bp.errorhandler(ProblemError)
def _problem(error: ProblemError) -> tuple[str, int]:
    """A service's refusal (not found, denied, invalid) as a page, not problem+json."""
    if error.status == 404:
        return _error_page(404, _("Page not found"), _("There is no page at this address."))
    return _error_page(error.status, _("Something went wrong"), error.detail)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    if database_unavailable(error):
        log.warning("database unavailable", error=type(error).__name__)
        return _unavailable_page()
    log.error("unhandled error", exc_info=error)
    return _error_page(
        500,
        _("Something went wrong"),
        _(
            "An internal error occurred. Quote this request id when you report it: %(rid)s",
            rid=g.get("request_id", ""),
        ),
    )


def page(action: str | None) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """Sign-in required; with `action`, the policy must allow the role that action."""

    def wrap(view: Callable[P, Any]) -> Callable[P, Any]:
        @wraps(view)
        def inner(*args: P.args, **kwargs: P.kwargs) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("web.login"))
            if action is not None:
                db = db_session()
                rule = request.url_rule.rule if request.url_rule else request.path
                decision = decide_and_record(
                    db, accounts.actor_of(user), action, Resource(type="page", id=rule)
                )
                if not decision.allowed:
                    db.commit()
                    return _error_page(
                        403,
                        _("No access"),
                        _("Your role may not use this page (rule %(rule)s).", rule=decision.rule),
                    )
            return view(*args, **kwargs)

        return inner

    return wrap


# -- signing in and out -----------------------------------------------------------------


def _begin_session(user: UserRow) -> BaseResponse:
    """A new session id at every sign-in: the old cookie (and its CSRF token) is dropped."""
    token = accounts.start_session(db_session(), user, now=_now())
    db_session().commit()
    _fresh_cookie()
    session["sid"] = token
    session.permanent = True
    return redirect(url_for("web.start"))


@bp.get("/")
@page(None)
def start() -> tuple[str, int]:
    user = current_user()
    names = organisation_names([user.organisation if user is not None else None])
    return _render("web/start.html", org_names=names)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user() is not None:
        return redirect(url_for("web.start"))
    form = LoginForm()
    failed = False
    if form.validate_on_submit():
        db = db_session()
        result = accounts.sign_in(
            db,
            services().keys,
            name=form.username.data or "",
            password=form.password.data or "",
            otp=(form.otp.data or "").replace(" ", ""),
            now=_now(),
            lockout_threshold=services().settings.web_lockout_threshold,
        )
        db.commit()
        if result.outcome == "signed-in" and result.user is not None:
            return _begin_session(result.user)
        if result.outcome == "must-change-password" and result.user is not None:
            _fresh_cookie()
            session["pending"] = {"user": result.user.id, "at": _now().isoformat()}
            return redirect(url_for("web.new_password"))
        failed = True
    return _render("web/login.html", form=form, failed=failed, errors=_login_errors(form, failed))


def _login_errors(form: LoginForm, failed: bool) -> list[tuple[str, str]]:
    if failed:
        return [
            (
                "username",
                _(
                    "Signing in failed. Check your user name, password and code. After "
                    "repeated failures signing in is blocked for a few minutes."
                ),
            )
        ]
    messages = {
        "username": _("Enter your user name."),
        "password": _("Enter your password."),
        "otp": _("Enter the 6-digit code from your authenticator app."),
    }
    return [(name, messages[name]) for name in messages if form[name].errors]


def _pending_user() -> UserRow | None:
    pending = session.get("pending")
    if not isinstance(pending, dict):
        return None
    try:
        started = datetime.fromisoformat(str(pending.get("at")))
    except ValueError:
        return None
    if _now() - started > PASSWORD_CHANGE_WINDOW:
        return None
    user = accounts.get_user(db_session(), str(pending.get("user")))
    return user if user is not None and user.must_change_password else None


PASSWORD_MESSAGES = {
    "too-short": _l("Choose a password of at least %(n)s characters."),
    "too-long": _l("Choose a password of at most %(n)s characters."),
    "mismatch": _l("The two passwords are not the same."),
    "unchanged": _l("Choose a password other than your one-time password."),
}


@bp.route("/login/password", methods=["GET", "POST"])
def new_password() -> Any:
    user = _pending_user()
    if user is None:
        session.pop("pending", None)
        flash(_("Sign in with your one-time password first."), "info")
        return redirect(url_for("web.login"))
    form = NewPasswordForm()
    error: tuple[str, str] | None = None
    if form.validate_on_submit():
        db = db_session()
        try:
            accounts.change_password(
                db, user, form.new_password.data or "", form.confirm_password.data or "", now=_now()
            )
        except accounts.PasswordRefused as refused:
            field = "confirm_password" if refused.code == "mismatch" else "new_password"
            limit = (
                accounts.MAX_PASSWORD_LENGTH
                if refused.code == "too-long"
                else accounts.MIN_PASSWORD_LENGTH
            )
            error = (field, str(PASSWORD_MESSAGES[refused.code] % {"n": limit}))
        else:
            return _begin_session(user)
    elif form.is_submitted():
        missing = "new_password" if not form.new_password.data else "confirm_password"
        error = (missing, _("Fill in both fields."))
    return _render(
        "web/new_password.html",
        form=form,
        error=error,
        min_length=accounts.MIN_PASSWORD_LENGTH,
        name=user.name,
    )


@bp.post("/logout")
def logout() -> BaseResponse:
    user = current_user()
    token = session.get("sid")
    if user is not None and isinstance(token, str):
        db = db_session()
        accounts.end_session(db, token, user, now=_now())
        db.commit()
    _fresh_cookie()
    flash(_("You have signed out."), "info")
    return redirect(url_for("web.login"))


def session_warning_lead(idle: int) -> int:
    """Seconds before the end of a session that the page warns (WCAG 2.2.1: at least
    20 s to act): two minutes, or half the idle time where that is shorter."""
    return min(120, max(1, idle // 2))


@bp.post("/session")
def session_extend() -> tuple[dict[str, object], int] | BaseResponse:
    """Keep the session alive (the page's script, when its warning's button is pressed
    or the person types): resuming it already counted as activity; this answers how
    long it now lasts, or 401 `signed-out` (problem+json). CSRF-checked by header like
    every web POST."""
    resumed = g.get("session_left")  # set together with the signed-in user
    if resumed is None:
        error = SignedOut("The session has ended; sign in again.")
        body = error.body(services().settings.issuer, g.get("request_id") or request.path)
        return BaseResponse(json.dumps(body), error.status, mimetype=PROBLEM_MEDIA_TYPE)
    return {
        "signedIn": True,
        "expiresIn": resumed.expires_in,
        "extendable": resumed.extendable,
    }, 200


#: The endpoint that answers a GET on a form's POST-only address (`add_form_pages`).
FORM_PAGE = "web.form_page"
#: Bounds of a `page_for` target: no page of ours is longer or deeper (a caller's
#: `next` could otherwise make it try every shorter prefix of a huge path).
MAX_TARGET_LENGTH = 512
MAX_TARGET_DEPTH = 8
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def page_for(target: str | None) -> str:
    """The web page (a GET address of this site) for `target`: itself if it is one, else
    the nearest one above it, so a form's POST-only address (`/cases/X/shares`) gives
    the page the form lives on (`/cases/X`); anything else (another host, the API, no
    page above) gives the start page, as does a target too long, too deep or with a
    control character (a redirect cannot carry one)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or len(target) > MAX_TARGET_LENGTH
        or _CONTROL.search(target)
    ):
        return url_for("web.start")
    path, sep, query = target.partition("?")
    if path.count("/") > MAX_TARGET_DEPTH:
        return url_for("web.start")
    adapter = current_app.url_map.bind("localhost")
    candidate = path
    while candidate not in ("", "/"):
        try:
            endpoint, _args = adapter.match(candidate, method="GET")
        except HTTPException:  # no such page, another method, or a redirect
            endpoint = None
        except RoutingException:
            endpoint = None
        if endpoint is not None and endpoint.startswith("web.") and endpoint != FORM_PAGE:
            return candidate + (sep + query if candidate == path else "")
        candidate = candidate.rsplit("/", 1)[0]
    return url_for("web.start")


def _form_page(**_args: str) -> BaseResponse:
    """A GET on a form's POST-only address (a reload from the address bar): to the page
    the form lives on, not a 405."""
    return redirect(page_for(request.path), 303)


def add_form_pages(app: Flask) -> None:
    """After the blueprint is registered: every POST-only web address also answers GET,
    with a redirect to its form's page (`_form_page`)."""
    for rule in list(app.url_map.iter_rules()):
        methods = rule.methods or set()
        if rule.endpoint.startswith("web.") and "GET" not in methods and "POST" in methods:
            app.add_url_rule(rule.rule, FORM_PAGE, _form_page, methods=["GET"])


@bp.post("/language")
def language() -> BaseResponse:
    """Switch the language and go back to the page the switch was on; after a refused
    form that page's address is the form's POST-only one, so `page_for` goes to the page
    the form lives on."""
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in LANGUAGES:
        session["lang"] = form.lang.data
    return redirect(page_for(form.next.data))


# -- coordinator ------------------------------------------------------------------------


def _queue_group(m: Any) -> int:
    """0: a match in a case that a signal joined since (it is in no case yet); 1: another
    match with a signal in no case; 2: the rest (in a case, or dismissed)."""
    if m.state == "dismissed" or not m.outside_cases:
        return 2
    return 0 if m.in_cases else 1


@bp.get("/matches")
@page("match.read")
def matches() -> tuple[str, int]:
    """The match queue: first a match in a case that a new signal joined, then matches
    with signals in no case (new, under review, confirmed), then linked and dismissed
    ones; each group most recently updated first (the same `MatchService` as
    `GET /v1/matches`)."""
    user = current_user()
    assert user is not None
    actor = accounts.actor_of(user)
    db = db_session()
    found = services().domain.matches.list(db, actor, None, 100, fresh=True)
    names = organisation_names(s.organisation for m in found.items for s in m.signals)
    db.commit()
    newest_first = sorted(found.items, key=lambda m: m.updated_at, reverse=True)
    queue = sorted(
        newest_first,
        key=lambda m: (_queue_group(m), QUEUE_ORDER.get(m.state, len(QUEUE_ORDER))),
    )
    return _render("web/matches.html", matches=queue, more=found.next is not None, org_names=names)


@bp.get("/matches/<match_id>")
@page("match.read")
def match(match_id: str) -> tuple[str, int]:
    """One match: each signal's id, organisation, reference, category, status and the
    cases that hold it; no payloads. A role that does case work also sees, for each case
    holding a signal of the match, a form to add the signals it does not hold yet."""
    return _match_page(match_id)


def _match_page(match_id: str, status: int = 200, **extra: Any) -> tuple[str, int]:
    user = current_user()
    assert user is not None
    actor = accounts.actor_of(user)
    db = db_session()
    found = services().domain.matches.get(db, actor, match_id)
    cases_of: dict[str, Any] = {}
    if found.in_cases and decide(actor, "case.write", Resource(type="case")).allowed:
        cases_of = services().cases.cases.holding(db, actor, [s.id for s in found.signals])
    names = organisation_names(s.organisation for s in found.signals)
    db.commit()
    cases = list({ref.id: ref for refs in cases_of.values() for ref in refs}.values())
    return _render(
        "web/match.html",
        status,
        match=found,
        cases_of=cases_of,
        match_cases=cases,
        org_names=names,
        **extra,
    )
