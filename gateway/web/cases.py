"""The case pages: `/cases` (the list, and a case from chosen signals) and `/cases/{id}`
(its signals, linking and unlinking, status, assignment, notes and shares).

Each action reads a form, calls ONE method of the same services as `/v1/cases` (they
ask the policy and write the audit entry), commits, and goes back to the case page. A
service's refusal (invalid input, a policy denial naming its rule, a signal not in the
case) is shown on the page in words, with the form filled in again; an unknown case
is the 404 page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import select

from gateway.actors import Actor
from gateway.cases.service import Case, CaseStatus, CaseUpdate, NewCase
from gateway.cases.shares import RecipientRefused
from gateway.errors import InvalidInput, PolicyDenied, ProblemError
from gateway.logs import mark_sensitive
from gateway.partners.models import Organisation
from gateway.partners.registry import active_directory
from gateway.services import db_session, services
from gateway.users import accounts
from gateway.users.models import UserRow
from gateway.web.case_forms import (
    AssignForm,
    LinkForm,
    NewCaseForm,
    NoteForm,
    ShareForm,
    StatusForm,
    UnlinkForm,
    optional,
    split_ids,
)
from gateway.web.labels import (
    CATEGORY_NAMES,
    KIND_NAMES,
    SIGNAL_STATUS_NAMES,
    OrganisationNames,
    organisation_names,
)
from gateway.web.views import _render, bp, current_user, page

CASE_WRITE = "case.write"
#: How many cases the list shows (newest first).
LIST_LIMIT = 100

STATUS_NAMES = {
    "open": _l("Open"),
    "in-progress": _l("In progress"),
    "closed": _l("Closed"),
}
SHARE_STATUS_NAMES = {
    "shared": _l("shared"),
    "pending": _l("waiting for approval"),
    "refused": _l("refused"),
}

#: A form's fields: JSON pointer of the service's error -> (field id on the page, message).
Fields = Mapping[str, tuple[str, Any]]
TEXT_RULES = _l("without personal data such as a BSN or a date")
CREATE_FIELDS: Fields = {
    "/title": ("title", _l("Give the case a title of 1 to 200 characters, %(rules)s.")),
    "/signalIds": ("signal_ids", _l("Give the ids of active signals, each at most once.")),
    "/matchId": ("title", _l("This match no longer exists.")),
    "": ("signal_ids", _l("Give the ids of the signals for the case.")),
}
LINK_FIELDS: Fields = {
    "/reason": ("link-reason", _l("Give a reason of 1 to 500 characters, %(rules)s.")),
    "/signalIds": ("link-signal", _l("This is not the id of an active signal.")),
    "": ("link-signal", _l("The signal could not be linked.")),
}
STATUS_FIELDS: Fields = {
    "/status": ("status", _l("Choose open, in progress or closed.")),
    "/outcome": (
        "outcome",
        _l("Closing a case needs an outcome of 1 to 500 characters, %(rules)s."),
    ),
    "": ("status", _l("The status could not be changed.")),
}
ASSIGN_FIELDS: Fields = {
    "/assignee": ("assignee", _l("Choose an active coordinator.")),
    "": ("assignee", _l("Choose an active coordinator.")),
}
NOTE_FIELDS: Fields = {
    "/text": ("note-text", _l("Write a note of 1 to 10,000 characters.")),
    "": ("note-text", _l("The note could not be added.")),
}
SHARE_FIELDS: Fields = {
    "/signalIds": ("share-signals", _l("Choose one or more active signals of this case.")),
    "/organisations": (
        "share-organisations",
        _l("Choose one or more receiving organisations, each with an encryption key."),
    ),
    "/purpose": ("share-purpose", _l("Choose the purpose of the share.")),
    "": ("share-organisations", _l("The share could not be made.")),
}

_RULE = re.compile(r"\(rule ([^)\s]+)\)")


def _actor() -> Actor:
    user = current_user()
    assert user is not None  # @page signed in
    return accounts.actor_of(user)


def _rule_of(error: PolicyDenied) -> str:
    found = _RULE.search(error.detail)
    return found.group(1) if found else "?"


def friendly(error: ProblemError, fields: Fields) -> list[tuple[str, str]]:
    """A service's refusal as (field id, Dutch message) pairs for the error summary."""
    default_id = fields[""][0]
    if isinstance(error, RecipientRefused):
        clash = error.clash
        return [
            (
                default_id,
                _(
                    "The privacy protocol does not allow this: %(organisation)s (%(kind)s) may "
                    "not receive signal %(reference)s (%(category)s) (rule %(rule)s). Share "
                    "that signal with another organisation, or leave it out.",
                    organisation=clash.organisation_name,
                    kind=KIND_NAMES.get(clash.organisation_kind, clash.organisation_kind),
                    reference=clash.signal_reference,
                    category=CATEGORY_NAMES.get(clash.category, clash.category),
                    rule=_rule_of(error),
                ),
            )
        ]
    if isinstance(error, PolicyDenied):
        return [
            (
                default_id,
                _(
                    "The privacy protocol does not allow this (rule %(rule)s).",
                    rule=_rule_of(error),
                ),
            )
        ]
    found: list[tuple[str, str]] = []
    if isinstance(error, InvalidInput):
        for field_error in error.errors:
            pointer = max(
                (p for p in fields if p and field_error.pointer.startswith(p)),
                key=len,
                default="",
            )
            field_id, message = fields[pointer]
            text = str(message) % {"rules": TEXT_RULES}
            if (field_id, text) not in found:
                found.append((field_id, text))
    if not found:
        found.append((default_id, str(fields[""][1]) % {"rules": TEXT_RULES}))
    return found


def _coordinators() -> list[tuple[str, str]]:
    """The active coordinators, as (value, label) options."""
    names = db_session().execute(
        select(UserRow.name)
        .where(UserRow.role == "coordinator", UserRow.status == "active")
        .order_by(UserRow.name)
    )
    return [(name, name) for name in names.scalars()]


def _receiver_orgs() -> list[Organisation]:
    """The partner organisations a case can be shared with (the meldpunt is not one)."""
    return [
        org
        for org in sorted(active_directory(db_session()), key=lambda o: o.name.lower())
        if org.kind != "meldpunt"
    ]


def _org_label(org: Organisation) -> str:
    return f"{org.name} ({KIND_NAMES.get(org.kind, org.kind)})"


def _share_options(case: Case, orgs: Sequence[Organisation]) -> list[tuple[str, str]]:
    """The share form's organisations, each saying which of the case's active categories
    the policy lets it receive (asked through `ShareService.receiving_kinds`)."""
    active = sorted({s.category for s in case.signals if s.status == "active"})
    kinds = services().cases.shares.receiving_kinds(active)
    options = []
    for org in orgs:
        may = [str(CATEGORY_NAMES.get(c, c)) for c in active if org.kind in kinds[c]]
        if may:
            note = _("may receive: %(categories)s", categories=", ".join(may))
        else:
            note = _("may receive none of these signals")
        options.append((org.id, f"{_org_label(org)} · {note}"))
    return options


def _signal_options(case: Case, names: OrganisationNames) -> list[tuple[str, str]]:
    """The case's active signals, as (id, "reference · category · organisation") options."""
    return [
        (
            s.id,
            f"{s.reference} · {CATEGORY_NAMES.get(s.category, s.category)} · "
            f"{names.label(s.organisation)}",
        )
        for s in case.signals
        if s.status == "active"
    ]


def _purposes() -> dict[str, str]:
    return dict(services().policy.engine.policy.purposes.allowed)


def _names() -> dict[str, Any]:
    return {
        "status_names": STATUS_NAMES,
        "signal_status_names": SIGNAL_STATUS_NAMES,
        "share_status_names": SHARE_STATUS_NAMES,
        "category_names": CATEGORY_NAMES,
        "kind_names": KIND_NAMES,
    }


# -- the list ---------------------------------------------------------------------------


def _list_page(
    status: int = 200,
    errors: Sequence[tuple[str, str]] = (),
    values: Mapping[str, str] | None = None,
) -> tuple[str, int]:
    db = db_session()
    found = services().cases.cases.list(db, _actor(), None, LIST_LIMIT)
    db.commit()
    newest_first = sorted(found.items, key=lambda c: c.created_at, reverse=True)
    return _render(
        "web/cases.html",
        status,
        cases=newest_first,
        more=found.next is not None,
        errors=list(errors),
        field_errors=dict(errors),
        values=values or {},
        **_names(),
    )


@bp.route("/cases", methods=["GET", "POST"])
@page(CASE_WRITE)
def cases() -> Any:
    """The cases, newest first; POST makes a case from a match or from chosen signals."""
    if request.method == "GET":
        return _list_page()
    form = NewCaseForm()
    title = (form.title.data or "").strip()
    match_id = optional((form.match_id.data or "").strip())
    signal_ids = () if match_id else split_ids(form.signal_ids.data)
    db = db_session()
    try:
        case = services().cases.cases.create(
            db, _actor(), NewCase(title, signal_ids=signal_ids, match_id=match_id)
        )
    except ProblemError as error:
        if error.status >= 500:
            raise
        db.rollback()
        errors = friendly(error, CREATE_FIELDS)
        if match_id is not None:  # the form was on the match page: back there, with why
            for _field, message in errors:
                flash(message, "error")
            return redirect(url_for("web.match", match_id=match_id))
        values = {"title": title, "signal_ids": form.signal_ids.data or ""}
        return _list_page(400, errors, values)
    db.commit()
    flash(_("The case has been created."), "success")
    return redirect(url_for("web.case", case_id=case.id))


# -- one case ---------------------------------------------------------------------------


def _case_page(
    case_id: str,
    status: int = 200,
    errors: Sequence[tuple[str, str]] = (),
    values: Mapping[str, Any] | None = None,
) -> tuple[str, int]:
    """The case page; an unknown case raises `NotFound` (the 404 page)."""
    db = db_session()
    actor = _actor()
    svc = services().cases
    case = svc.cases.get(db, actor, case_id)
    notes = svc.cases.notes(db, actor, case_id)
    shares = svc.shares.of_case(db, actor, case_id)
    coordinators = _coordinators()
    orgs = _receiver_orgs()
    receivers = _share_options(case, orgs)
    names = organisation_names(
        [s.organisation for s in case.signals] + [o for sh in shares for o in sh.organisations]
    )
    db.commit()
    references = {s.id: s.reference for s in case.signals}
    organisations = {org.id: _org_label(org) for org in orgs}
    return _render(
        "web/case.html",
        status,
        case=case,
        notes=notes,
        shares=list(reversed(shares)),
        coordinators=coordinators,
        receivers=receivers,
        signal_options=_signal_options(case, names),
        purposes=_purposes(),
        references=references,
        organisations=organisations,
        org_names=names,
        payload_reading="web.payload" in current_app.view_functions,
        approvals_page="web.approvals" in current_app.view_functions,
        errors=list(errors),
        field_errors=dict(errors),
        values=values or {},
        **_names(),
    )


@bp.get("/cases/<case_id>")
@page(CASE_WRITE)
def case(case_id: str) -> tuple[str, int]:
    return _case_page(case_id)


def _act(
    case_id: str,
    work: Callable[[], str],
    fields: Fields,
    values: Mapping[str, Any],
) -> Any:
    """Do one service call; on success commit and go back to the case with a message,
    on a refusal show the case page again with the refusal and the values typed."""
    db = db_session()
    try:
        message = work()
    except ProblemError as error:
        if error.status >= 500:
            raise
        db.rollback()
        status = 403 if isinstance(error, PolicyDenied) else 400
        return _case_page(case_id, status, friendly(error, fields), values)
    db.commit()
    flash(message, "success")
    return redirect(url_for("web.case", case_id=case_id))


@bp.post("/cases/<case_id>/signals")
@page(CASE_WRITE)
def case_link(case_id: str) -> Any:
    form = LinkForm()
    signal_id = (form.signal_id.data or "").strip()
    reason = (form.reason.data or "").strip()
    match_id = optional((form.match_id.data or "").strip())
    if match_id is not None:
        return _link_match(case_id, match_id, reason)

    def work() -> str:
        services().cases.cases.link(db_session(), _actor(), case_id, signal_id, reason)
        return str(_("The signal has been linked to the case."))

    values = {"link-signal": signal_id, "link-reason": reason}
    return _act(case_id, work, LINK_FIELDS, values)


MATCH_LINK_FIELDS: Fields = {
    "/reason": ("add-reason", _l("Give a reason of 1 to 500 characters, %(rules)s.")),
    "/signalIds": ("add-reason", _l("The case already holds every active signal of this match.")),
    "/matchId": ("add-reason", _l("This match no longer exists.")),
    "": ("add-reason", _l("The signals could not be linked.")),
}


def _link_match(case_id: str, match_id: str, reason: str) -> Any:
    """From the match page: the match's active signals the case does not hold yet go into
    the case (`CaseService.link_match`); a refusal goes back to the match page, with why."""
    db = db_session()
    try:
        _case, linked = services().cases.cases.link_match(db, _actor(), case_id, match_id, reason)
    except ProblemError as error:
        if error.status >= 500 or error.status == 404:
            raise
        db.rollback()
        for _field, message in friendly(error, MATCH_LINK_FIELDS):
            flash(message, "error")
        return redirect(url_for("web.match", match_id=match_id), 303)
    db.commit()
    flash(
        ngettext(
            "%(num)d signal of the match has been linked to the case.",
            "%(num)d signals of the match have been linked to the case.",
            len(linked),
        ),
        "success",
    )
    return redirect(url_for("web.case", case_id=case_id), 303)


@bp.post("/cases/<case_id>/signals/<signal_id>/unlink")
@page(CASE_WRITE)
def case_unlink(case_id: str, signal_id: str) -> Any:
    form = UnlinkForm()
    reason = (form.reason.data or "").strip()
    field_id = f"unlink-reason-{signal_id}"

    def work() -> str:
        services().cases.cases.unlink(db_session(), _actor(), case_id, signal_id, reason)
        return str(_("The signal has been taken out of the case."))

    fields: Fields = {
        "/reason": (field_id, _l("Give a reason of 1 to 500 characters, %(rules)s.")),
        "": (field_id, _l("This signal is not linked to this case.")),
    }
    return _act(case_id, work, fields, {field_id: reason})


@bp.post("/cases/<case_id>/status")
@page(CASE_WRITE)
def case_status(case_id: str) -> Any:
    form = StatusForm()
    status = (form.status.data or "").strip()
    outcome = optional((form.outcome.data or "").strip())

    def work() -> str:
        change = CaseUpdate(
            status=cast(CaseStatus, status),
            outcome=outcome if status == "closed" else None,
        )
        services().cases.cases.update(db_session(), _actor(), case_id, change)
        return str(_("The status has been changed."))

    return _act(case_id, work, STATUS_FIELDS, {"status": status, "outcome": outcome or ""})


@bp.post("/cases/<case_id>/assignee")
@page(CASE_WRITE)
def case_assign(case_id: str) -> Any:
    form = AssignForm()
    assignee = (form.assignee.data or "").strip()

    def work() -> str:
        if not assignee:
            raise InvalidInput("No assignee.", errors=[])
        change = CaseUpdate(assignee=assignee)
        services().cases.cases.update(db_session(), _actor(), case_id, change)
        return str(_("The case has been assigned to %(name)s.", name=assignee))

    return _act(case_id, work, ASSIGN_FIELDS, {"assignee": assignee})


@bp.post("/cases/<case_id>/notes")
@page(CASE_WRITE)
def case_note(case_id: str) -> Any:
    form = NoteForm()
    text = form.text.data or ""
    mark_sensitive([text])

    def work() -> str:
        services().cases.cases.add_note(db_session(), _actor(), case_id, text)
        return str(_("The note has been added."))

    return _act(case_id, work, NOTE_FIELDS, {"note-text": text})


@bp.post("/cases/<case_id>/shares")
@page(CASE_WRITE)
def case_share(case_id: str) -> Any:
    form = ShareForm()
    signal_ids = [s for s in form.signal_ids.data or [] if s]
    organisations = [o for o in form.organisations.data or [] if o]
    purpose = (form.purpose.data or "").strip()

    def work() -> str:
        outcome = services().cases.shares.share(
            db_session(), _actor(), case_id, organisations, signal_ids, purpose
        )
        if outcome.status == "shared":
            return str(_("The signals have been shared."))
        return str(
            _(
                "The share waits for the approval of a second coordinator; "
                "the request is on the Approvals page."
            )
        )

    values = {"share-signals": signal_ids, "share-organisations": organisations, "purpose": purpose}
    return _act(case_id, work, SHARE_FIELDS, values)
