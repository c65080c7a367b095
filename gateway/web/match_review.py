"""The coordinator's review of a match: under review, confirmed, reopened, or dismissed
with a reason code. Each form posts here; the page calls `MatchService.review` (the
one audited action, as `PATCH /v1/matches/{id}`) and goes back to the match."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from gateway.matching.models import DISMISSAL_REASONS
from gateway.services import db_session, services
from gateway.users import accounts
from gateway.web.labels import (
    CATEGORY_NAMES,
    LINKAGE_KEY_NAMES,
    SIGNAL_STATUS_NAMES,
    agreement,
    supplied,
)
from gateway.web.views import _match_page, _render, bp, current_user, page

#: The states a review button may set (a dismissal has its own form).
_BUTTON_STATES = ("under-review", "confirmed", "new")


@bp.context_processor
def _match_page_names() -> dict[str, object]:
    """The reason codes the match page's dismissal form offers; names of its signals' codes."""
    return {
        "reasons": DISMISSAL_REASONS,
        "signal_category_names": CATEGORY_NAMES,
        "signal_status_names": SIGNAL_STATUS_NAMES,
        "linkage_key_names": LINKAGE_KEY_NAMES,
        "agreement": agreement,
        "supplied": supplied,
    }


def _done(match_id: str) -> BaseResponse:
    db_session().commit()
    flash(_("The match was updated."), "success")
    return redirect(url_for("web.match", match_id=match_id), 303)


@bp.post("/matches/<match_id>/review")
@page("case.write")
def match_review(match_id: str) -> BaseResponse | tuple[str, int]:
    user = current_user()
    assert user is not None
    state = request.form.get("state", "")
    if state not in _BUTTON_STATES:
        return _render(
            "web/error.html",
            400,
            title=_("Something went wrong"),
            message=_("The request could not be handled."),
        )
    found = services().domain.matches.review(db_session(), accounts.actor_of(user), match_id, state)
    return _done(found.id)


@bp.post("/matches/<match_id>/dismissal")
@page("case.write")
def match_dismissal(match_id: str) -> BaseResponse | tuple[str, int]:
    user = current_user()
    assert user is not None
    actor = accounts.actor_of(user)
    reason = request.form.get("reason", "")
    db = db_session()
    if reason not in DISMISSAL_REASONS:
        errors = [("reason", _("Choose why the match is dismissed"))]
        return _match_page(match_id, 400, review_errors=errors)
    found = services().domain.matches.review(db, actor, match_id, "dismissed", reason)
    return _done(found.id)
