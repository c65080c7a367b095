"""`/intake`: a professional whose organisation has no connected system files a signal.

The page only translates: the form's fields become the API's `subject`, and
`SignalService.submit_report` (the service `POST /v1/signals` calls) checks them, asks
the policy, pseudonymises, seals the report for the policy's recipients and writes the
audit entry. The identifiers and the report text travel by POST only and are never
stored, logged or put in a URL; after a filing the browser is sent on (POST, redirect,
GET) so that a reload files nothing twice. The receipt (signal id and audit leaf hash)
is carried to the next page in the signed session cookie.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import flash, redirect, request, session, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from gateway.actors import Actor
from gateway.errors import FieldError, InvalidInput, PolicyDenied
from gateway.policy.engine import Resource
from gateway.policy.service import decide_and_record
from gateway.services import db_session, services
from gateway.signals.submission import REPORT_MAX_CHARS, Report
from gateway.web.labels import CATEGORY_NAMES, SIGNAL_STATUS_NAMES, capitalised
from gateway.web.views import (
    _error_page,
    _render,
    bp,
    current_actor,
    filing_categories,
    page,
)

#: The subject's fields, named as the API's `subject` (DESIGN.md, web workspace).
SUBJECT_FIELDS = ("bsn", "familyName", "givenNames", "dateOfBirth")
#: The longest value a subject field or the reference takes (longer is cut, then refused).
FIELD_MAX = 200
_DUTCH_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
RECEIPT = "intake_receipt"
MESSAGES = {
    "bsn": _l("Enter a valid BSN: 9 digits that pass the eleven test."),
    "familyName": _l("Enter a valid family name."),
    "givenNames": _l("Enter valid given names."),
    "dateOfBirth": _l("Enter a valid date of birth: day, month and year, not in the future."),
    "subject": _l("Enter a BSN, or a family name together with a date of birth."),
    "category": _l("Choose a category."),
    "category-denied": _l("Your organisation may not file signals in this category."),
    "reference": _l(
        "Your own reference may hold no personal data and is at most 64 characters long."
    ),
    "payload": _l("The report could not be encrypted for the report desk. Try again later."),
}
#: The field each error pointer belongs to, in the order the form shows them.
POINTERS = {
    "/subject/bsn": "bsn",
    "/subject/familyName": "familyName",
    "/subject/givenNames": "givenNames",
    "/subject/dateOfBirth": "dateOfBirth",
    "/subject": "subject",
    "/category": "category",
    "/reference": "reference",
    "/report": "report",
}
FIELD_ORDER = (*SUBJECT_FIELDS, "category", "report", "reference")


def _iso_date(value: str) -> str:
    """A date typed the Dutch way (17-4-2009) becomes the API's 2009-04-17; anything
    else goes to the service unchanged (which says whether it is a date)."""
    found = _DUTCH_DATE.match(value)
    if found is None:
        return value
    day, month, year = found.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"


def _values() -> dict[str, str]:
    form = request.form
    values = {name: form.get(name, "")[:FIELD_MAX].strip() for name in SUBJECT_FIELDS}
    values["category"] = form.get("category", "")[:64]
    values["reference"] = form.get("reference", "")[:FIELD_MAX].strip()
    values["report"] = form.get("report", "")[: REPORT_MAX_CHARS + 1]
    return values


def _subject(values: dict[str, str]) -> dict[str, str]:
    subject = {name: values[name] for name in SUBJECT_FIELDS if values[name]}
    if "dateOfBirth" in subject:
        subject["dateOfBirth"] = _iso_date(subject["dateOfBirth"])
    return subject


def _field_errors(errors: list[FieldError]) -> dict[str, str]:
    """One Dutch (or English) message per form field; never the value itself."""
    found: dict[str, str] = {}
    for error in errors:
        name = POINTERS.get(error.pointer, "payload")
        key = "bsn" if name == "subject" else ("report" if name == "payload" else name)
        found.setdefault(key, _message(name))
    return found


def _message(name: str) -> str:
    if name == "report":
        limit = format_decimal(REPORT_MAX_CHARS)
        return str(_("Describe your concern (at most %(n)s characters).", n=limit))
    return str(MESSAGES[name])


def _own_signals(actor: Actor) -> list[Any]:
    db = db_session()
    listed = services().domain.signals.list(db, actor, None, 500)
    db.commit()
    return sorted(listed.items, key=lambda s: s.created_at, reverse=True)


def _form_page(
    actor: Actor,
    categories: list[str],
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    errors = errors or {}
    category_names = capitalised(CATEGORY_NAMES)  # they open a label or a cell
    return _render(
        "web/intake.html",
        status,
        categories=categories,
        category_options=[(name, category_names.get(name, name)) for name in categories],
        category_names=category_names,
        category_descriptions={
            name: services().policy.engine.policy.categories[name].description
            for name in categories
        },
        status_names=SIGNAL_STATUS_NAMES,
        values=values or {},
        errors=errors,
        summary=[(name, errors[name]) for name in FIELD_ORDER if name in errors],
        signals=_own_signals(actor),
        receipt=session.pop(RECEIPT, None) if status == 200 and not errors else None,
        report_max=REPORT_MAX_CHARS,
    )


def _no_access(actor: Actor) -> tuple[str, int]:
    """The role may file in no category: a 403 page whose denial is in the audit log."""
    first = next(iter(services().policy.engine.policy.categories), None)
    db = db_session()
    decision = decide_and_record(
        db,
        actor,
        "signal.create",
        Resource(type="page", id="/intake", category=first, organisation=actor.organisation),
    )
    db.commit()
    return _error_page(
        403,
        _("No access"),
        _("Your role may not use this page (rule %(rule)s).", rule=decision.rule),
    )


@bp.route("/intake", methods=["GET", "POST"])
@page(None)
def intake() -> Any:
    actor = current_actor()
    assert actor is not None  # page() signed the person in
    categories = filing_categories(actor)
    if not categories:
        return _no_access(actor)
    if request.method == "GET":
        return _form_page(actor, categories)
    values = _values()
    chosen = services().policy.engine.category(values["category"])
    if chosen is not None and chosen.test:  # conformance tests are for partner systems
        errors = {"category": str(MESSAGES["category-denied"])}
        return _form_page(actor, categories, values=values, errors=errors, status=403)
    report = Report(
        category=values["category"],
        subject=_subject(values),
        text=values["report"],
        reference=values["reference"],
    )
    db = db_session()
    try:
        done = services().domain.signals.submit_report(db, actor, report)
        db.commit()
    except InvalidInput as invalid:
        db.rollback()
        return _form_page(
            actor, categories, values=values, errors=_field_errors(invalid.errors), status=400
        )
    except PolicyDenied:  # a category the organisation's kind may not file (audited)
        errors = {"category": str(MESSAGES["category-denied"])}
        return _form_page(actor, categories, values=values, errors=errors, status=403)
    session[RECEIPT] = {
        "id": done.signal.id,
        "reference": done.signal.reference,
        "category": done.signal.category,
        "leafHash": _leaf_hash(done.body),
    }
    return redirect(url_for("web.intake"), code=303)


def _leaf_hash(body: str) -> str:
    receipt = json.loads(body).get("receipt") or {}
    return str(receipt.get("leafHash", ""))


@bp.post("/intake/signals/<signal_id>/withdraw")
@page(None)
def intake_withdraw(signal_id: str) -> BaseResponse:
    """Withdraw one's own signal (the service `DELETE /v1/signals/{id}` calls)."""
    actor = current_actor()
    assert actor is not None
    db = db_session()
    done = services().domain.signals.withdraw(db, actor, signal_id)
    db.commit()
    flash(_("Signal %(reference)s is withdrawn.", reference=done.signal.reference), "success")
    return redirect(url_for("web.intake"), code=303)
