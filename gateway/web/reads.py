"""Reading a signal with a purpose, and the four-eyes approvals page.

`/cases/<case_id>/signals/<signal_id>/payload`: the coordinator chooses one of the
purposes the policy lists; `PayloadService.read` decrypts the meldpunt copy in memory and
the page shows it on the POST's own answer (never stored, never in a URL, `no-store`).
A category the policy marks four-eyes first needs a request (`ApprovalService.request`)
that a second coordinator approves on `/approvals`; an approval serves one read.

`/approvals`: the open requests of other coordinators (approve, or refuse with a reason)
and one's own requests with what became of them. Approving a waiting share performs it.
The services decide and audit; a refusal of theirs becomes a Dutch message, not a 500.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from gateway.actors import Actor
from gateway.cases.approvals import (
    CASE_SHARE,
    PAYLOAD_READ,
    Approval,
    ApprovalBoard,
    ApprovalItem,
    ApprovalNotPending,
    ApprovalRequired,
    PayloadRead,
)
from gateway.cases.service import CaseSignal
from gateway.errors import Conflict, InvalidInput, NotFound, PolicyDenied, ProblemError
from gateway.policy.engine import Context, Resource
from gateway.policy.service import decide, policy_engine
from gateway.services import db_session, services
from gateway.web.forms import DecisionForm, PurposeForm
from gateway.web.labels import (
    CATEGORY_NAMES,
    OrganisationNames,
    capital_name,
    organisation_names,
)
from gateway.web.views import _render, bp, current_actor, page

#: How the policy's purposes are called on the page (the policy's text is the help).
PURPOSE_LABELS = {
    "case-assessment": _l("Assessing the signal (triage)"),
    "safety-assessment": _l("Assessing acute danger"),
    "care-referral": _l("Referral to care and shelter"),
    "case-meeting": _l("Preparing the case meeting"),
}
KIND_LABELS = {
    PAYLOAD_READ: _l("Reading a signal"),
    CASE_SHARE: _l("Sharing a case"),
}
_RULE = re.compile(r"\(rule ([^)\s]+)\)")


@dataclass(frozen=True)
class Purpose:
    id: str
    label: str
    help: str


def _(message: str, **variables: Any) -> str:
    """gettext, typed."""
    return str(gettext(message, **variables))


def _now() -> datetime:
    return datetime.now(UTC)


def _actor() -> Actor:
    actor = current_actor()
    assert actor is not None  # @page signed the person in
    return actor


def purpose_label(purpose: str | None) -> str:
    return str(PURPOSE_LABELS.get(purpose or "", purpose or ""))


def category_label(category: str | None) -> str:
    return capital_name(CATEGORY_NAMES, category)


def person(key: str | None) -> str:
    """`user:c.jansen` → `c.jansen` (the user name the person signs in with)."""
    return (key or "").partition(":")[2] or (key or "")


def state(approval: Approval) -> str:
    """pending, approved, refused, used, or expired (a pending or approved one past its time)."""
    if approval.status in {"pending", "approved"} and approval.expires_at <= _now():
        return "expired"
    return approval.status


def _rule(error: ProblemError) -> str | None:
    found = _RULE.search(error.detail)
    return found.group(1) if found else None


def friendly(error: ProblemError) -> str:
    """A service's refusal in the page's language; the rule where the policy refused."""
    rule = _rule(error)
    if isinstance(error, ApprovalRequired):
        return _(
            "Reading a signal of this category needs the approval of a second coordinator "
            "first (four eyes). Request an approval below."
        )
    if isinstance(error, ApprovalNotPending):
        return _("This request has already been decided on, or it has expired.")
    if isinstance(error, PolicyDenied):
        if rule == "deny:four-eyes-same-person":
            return _(
                "You cannot approve or refuse your own request: a second coordinator must "
                "decide on it (rule %(rule)s).",
                rule=rule,
            )
        if rule == "deny:four-eyes-approver-role":
            return _("Only a coordinator may decide on this request (rule %(rule)s).", rule=rule)
        if rule in {"deny:purpose-required", "deny:purpose-not-listed"}:
            return _(
                "Choose one of the purposes the privacy protocol lists (rule %(rule)s).", rule=rule
            )
        return _("The privacy protocol does not allow this (rule %(rule)s).", rule=rule or "?")
    if isinstance(error, NotFound):
        return _("What this form refers to no longer exists.")
    if isinstance(error, InvalidInput):
        if any(e.pointer == "/reason" for e in error.errors):
            return _(
                "Give a reason of 1 to 500 characters, without personal data such as a "
                "citizen service number or a date of birth."
            )
        if any(e.pointer.startswith(("/organisations", "/signalIds")) for e in error.errors):
            return _(
                "The share can no longer be made as requested: a receiver or a signal is no "
                "longer available. Refuse it, and share again from the case."
            )
        return _("The form was not filled in correctly.")
    if isinstance(error, Conflict):
        return _("No approval is needed for this; you can read the signal straight away.")
    return _("The request could not be handled. Try again later.")


# -- reading a payload --------------------------------------------------------------------


def _case_signal(actor: Actor, case_id: str, signal_id: str) -> tuple[str, CaseSignal]:
    """The case (decided and audited by `CaseService.get`) and its signal, else 404."""
    case = services().cases.cases.get(db_session(), actor, case_id)
    for signal in case.signals:
        if signal.id == signal_id:
            return case.title, signal
    raise NotFound("The signal is not linked to this case.")


def _purposes(actor: Actor, signal: CaseSignal) -> tuple[list[Purpose], bool]:
    """The purposes the policy would let this actor read the signal for, and whether such
    a read needs a second coordinator's approval (for the form: the read itself decides)."""
    resource = Resource(
        type="signal", id=signal.id, category=signal.category, organisation=signal.organisation
    )
    found: list[Purpose] = []
    four_eyes = False
    for purpose, description in policy_engine().policy.purposes.allowed.items():
        decision = decide(actor, PAYLOAD_READ, resource, Context(purpose=purpose))
        if decision.effect == "allow":
            found.append(Purpose(purpose, purpose_label(purpose), description))
            four_eyes = four_eyes or decision.needs_approval
    return found, four_eyes


def _back_url(case_id: str) -> str | None:
    views = current_app.view_functions
    if "web.case" in views:
        return url_for("web.case", case_id=case_id)
    return url_for("web.cases") if "web.cases" in views else None


def _payload_text(read: PayloadRead) -> str:
    """The content as text; a JSON document indented, so its fields are on lines of their own."""
    text = read.content.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if not isinstance(parsed, dict | list):
        return text
    return json.dumps(parsed, indent=2, ensure_ascii=False)


def _next_transaction(db: Session) -> None:
    """After a service's refusal (which may have committed its denial entry): end what is
    left; the next transaction takes SQLite's write lock again (`Database.session`)."""
    db.rollback()


def _no_store(body: tuple[str, int]) -> BaseResponse:
    response = current_app.make_response(body)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route("/cases/<case_id>/signals/<signal_id>/payload", methods=["GET", "POST"])
@page("case.write")
def payload(case_id: str, signal_id: str) -> BaseResponse:
    """GET: the purpose form. POST `intent=read`: the content, on this answer only;
    POST `intent=request`: ask a second coordinator's approval for the chosen purpose."""
    actor = _actor()
    db = db_session()
    title, signal = _case_signal(actor, case_id, signal_id)
    purposes, four_eyes = _purposes(actor, signal)
    form = PurposeForm()
    chosen = (form.purpose.data or "") if form.is_submitted() else ""
    error: str | None = None
    needs_approval = False
    content: str | None = None
    status = 200
    if form.is_submitted():
        if not form.validate() or chosen not in {p.id for p in purposes}:
            error, status = _("Choose the purpose for which you read this signal."), 400
        elif form.intent.data == "request":
            try:
                services().cases.approvals.request(db, actor, PAYLOAD_READ, signal.id, chosen)
                db.commit()
            except ProblemError as refused:
                _next_transaction(db)
                error, status = friendly(refused), refused.status
            else:
                flash(
                    _(
                        "Your request has been sent. A second coordinator decides on it on "
                        "the approvals page; then you can read the signal once."
                    ),
                    "info",
                )
                return redirect(url_for("web.payload", case_id=case_id, signal_id=signal_id))
        else:
            try:
                read = services().cases.payloads.read(db, actor, signal.id, chosen)
            except ApprovalRequired as refused:
                _next_transaction(db)
                error, status, needs_approval = friendly(refused), 403, True
            except ProblemError as refused:
                _next_transaction(db)
                error, status = friendly(refused), refused.status
            else:
                content = _payload_text(read)
    board = services().cases.approvals.board(db, actor, target=signal.id)
    names = organisation_names([signal.organisation])
    db.commit()  # the read (its approval used) and its audit entries, or the lists' entry
    requests = [item for item in board.own if item.approval.kind == PAYLOAD_READ]
    return _no_store(
        _render(
            "web/payload.html",
            status,
            form=form,
            case_id=case_id,
            case_title=title,
            signal=signal,
            category=category_label(signal.category),
            purposes=purposes,
            chosen=chosen,
            four_eyes=four_eyes,
            needs_approval=needs_approval,
            error=error,
            content=content,
            purpose=purpose_label(chosen),
            requests=requests,
            back_url=_back_url(case_id),
            state=state,
            purpose_label=purpose_label,
            person=person,
            org_names=names,
        )
    )


# -- the approvals page --------------------------------------------------------------------


def _board_names(board: ApprovalBoard) -> OrganisationNames:
    """The names of the organisations the requests name (their signals', the receivers')."""
    subjects = [item.subject for item in (*board.to_decide, *board.own)]
    return organisation_names(
        [s.organisation for s in subjects] + [r for s in subjects for r in s.receivers]
    )


def _board_page(
    board: ApprovalBoard,
    names: OrganisationNames,
    status: int = 200,
    *,
    error: str | None = None,
    failed: str | None = None,
    reason: str = "",
) -> tuple[str, int]:
    return _render(
        "web/approvals.html",
        status,
        to_decide=board.to_decide,
        own=board.own,
        error=error,
        failed=failed,
        reason=reason,
        kinds=KIND_LABELS,
        state=state,
        purpose_label=purpose_label,
        category_label=category_label,
        person=person,
        payload_url=_payload_url,
        org_names=names,
    )


def _payload_url(item: ApprovalItem) -> str | None:
    subject = item.subject
    if item.approval.kind != PAYLOAD_READ or not (subject.case_id and subject.signal_id):
        return None
    return url_for("web.payload", case_id=subject.case_id, signal_id=subject.signal_id)


@bp.route("/approvals", methods=["GET", "POST"])
@page("case.write")
def approvals() -> Any:
    """Requests to decide on (approve, or refuse with a reason) and one's own requests."""
    actor = _actor()
    db = db_session()
    service = services().cases.approvals
    form = DecisionForm()
    if request.method == "POST":
        approval_id = form.approval.data or ""
        reason = (form.reason.data or "").strip()
        error: str | None = None
        status = 400
        if not form.validate() or form.decision.data not in {"approve", "refuse"}:
            error = _("The form was not filled in correctly.")
        elif form.decision.data == "refuse" and not reason:
            error = _("Give the reason why you refuse this request.")
        else:
            try:
                if form.decision.data == "approve":
                    decided = service.approve(db, actor, approval_id)
                else:
                    decided = service.refuse(db, actor, approval_id, reason)
                db.commit()
            except ProblemError as refused:
                _next_transaction(db)
                error, status = friendly(refused), refused.status
            else:
                flash(_done(decided), "info")
                return redirect(url_for("web.approvals"))
        board = service.board(db, actor)
        names = _board_names(board)
        db.commit()
        return _board_page(board, names, status, error=error, failed=approval_id, reason=reason)
    board = service.board(db, actor)
    names = _board_names(board)
    db.commit()
    return _board_page(board, names)


def _done(approval: Approval) -> str:
    if approval.status == "refused":
        return _("The request has been refused; the requester sees your reason.")
    if approval.kind == CASE_SHARE:
        return _("The share has been approved and made; the receivers have been notified.")
    return _("The request has been approved; the requester can now read the signal once.")
