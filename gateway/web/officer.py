"""The privacy officer's pages: the data-subject report, the agreement and its
history, and the misuse alerts. Each view reads a form, calls a service, renders."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from gateway.actors import Actor
from gateway.alerts.models import NOTE_MAX_LENGTH
from gateway.alerts.service import AlertAlreadyHandled, InvalidNote, NoteProblem
from gateway.errors import NotFound
from gateway.policy.history import DIGEST, PolicyOverview, UnknownVersion
from gateway.pseudonyms.errors import InvalidSubject
from gateway.reports.pdf import render_pdf
from gateway.reports.subject import KINDS, REPORT_PURPOSES, Format, SubjectReport
from gateway.services import close_request_session, db_session, services
from gateway.web.forms import HandleAlertForm, SubjectReportForm
from gateway.web.labels import ACTION_NAMES, CATEGORY_NAMES, OUTCOME_NAMES
from gateway.web.views import ROLE_NAMES, _render, bp, current_actor, page

#: The subject fields of the form, as the API names them (DESIGN: web workspace).
SUBJECT_FIELDS = ("bsn", "familyName", "givenNames", "dateOfBirth")
REPORT_PURPOSE_NAMES = {
    "access-request": _l("Access request of the data subject (GDPR art. 15)"),
    "rectification-request": _l("Request for rectification or erasure (GDPR art. 16-17)"),
    "supervision": _l("Supervision by the privacy officer"),
}
KIND_NAMES = {
    "signal": _l("Signals: submitted, withdrawn, erased"),
    "match": _l("Matching"),
    "case": _l("Cases"),
    "share": _l("Shares with partners"),
    "payload-read": _l("Payload reads"),
    "other": _l("Other accesses"),
}
ALERT_KIND_NAMES = {
    "payload-reads-above-usual": _l("A coordinator reads far more payloads than usual"),
    "reads-outside-office-hours": _l("Payload reads outside office hours"),
    "refusals-per-client": _l("One system or person refused many times"),
    "submit-withdraw-bursts": _l("A partner submits and withdraws in bursts (probing)"),
    "subject-searches-per-user": _l("Many subject searches by one person"),
}
FIELD_NAMES = {
    "bsn": _l("Citizen service number (BSN)"),
    "familyName": _l("Family name"),
    "givenNames": _l("Given names"),
    "dateOfBirth": _l("Date of birth"),
}
#: The PDF's own texts (`gateway.reports.pdf` asks for them through gettext), named here
#: so that they are extracted into the catalogue with the page's.
PDF_TEXTS = (
    _l("Controller"),
    _l("Data-subject report"),
    _l("FOR REVIEW"),
    _l("Grounds for restriction"),
    _l(
        "Items marked FOR REVIEW may fall under a restriction of the policy; the privacy "
        "officer decides on them before this report is handed out."
    ),
    _l("Policy"),
    _l("Reference"),
    _l("Status"),
    _l("may be disclosed"),
)
assert set(REPORT_PURPOSE_NAMES) == set(REPORT_PURPOSES) and set(KIND_NAMES) == set(KINDS)


def _labels() -> dict[str, str]:
    """Translated names for the PDF (it is built outside a template)."""
    labels = {f"purpose:{k}": str(v) for k, v in REPORT_PURPOSE_NAMES.items()}
    labels |= {f"kind:{k}": str(v) for k, v in KIND_NAMES.items()}
    labels |= {f"action:{k}": str(v) for k, v in ACTION_NAMES.items()}
    labels |= {f"outcome:{k}": str(v) for k, v in OUTCOME_NAMES.items()}
    labels |= {f"role:{k}": str(v) for k, v in ROLE_NAMES.items()}
    labels |= {f"category:{k}": str(v) for k, v in CATEGORY_NAMES.items()}
    return labels


def _subject(form: SubjectReportForm) -> dict[str, str]:
    values = {
        "bsn": form.bsn.data,
        "familyName": form.family_name.data,
        "givenNames": form.given_names.data,
        "dateOfBirth": form.date_of_birth.data,
    }
    return {k: v.strip() for k, v in values.items() if v and v.strip()}


@bp.route("/subject-report", methods=["GET", "POST"])
@page("subject.search")
def subject_report() -> Any:
    """Identifiers in (POST only) → the report as a page, or as a PDF to hand out."""
    form = SubjectReportForm()
    form.purpose.choices = [(k, str(v)) for k, v in REPORT_PURPOSE_NAMES.items()]
    errors: list[tuple[str, str]] = []
    report: SubjectReport | None = None
    if request.method == "POST":
        subject = _subject(form)
        if not form.validate():
            if form.purpose.errors:
                errors.append(("purpose", _("Choose the purpose of this report.")))
            errors += [
                (name, _("Check this field."))
                for name, f in (
                    ("bsn", form.bsn),
                    ("familyName", form.family_name),
                    ("givenNames", form.given_names),
                    ("dateOfBirth", form.date_of_birth),
                )
                if f.errors
            ]
        elif not subject:
            errors.append(("bsn", _("Enter the BSN, or the family name and date of birth.")))
        else:
            actor = current_actor()
            assert actor is not None
            fmt: Format = "pdf" if form.format.data == "pdf" else "html"
            # The page check opened the request's session; the search first brings the
            # log up to date, which on SQLite needs the write lock: let the session go.
            close_request_session()
            try:
                report = services().domain.subject_reports.build(
                    db_session, actor, subject, purpose=form.purpose.data or "", format=fmt
                )
            except InvalidSubject as invalid:
                db_session().rollback()
                errors += _subject_errors(invalid)
            else:
                db_session().commit()
                if fmt == "pdf":
                    return _pdf(report)
    return _render(
        "web/subject_report.html",
        400 if errors else 200,
        form=form,
        errors=errors,
        report=report,
        purposes=REPORT_PURPOSE_NAMES,
        kinds=KIND_NAMES,
        actions=ACTION_NAMES,
        outcomes=OUTCOME_NAMES,
        roles=ROLE_NAMES,
        categories=CATEGORY_NAMES,
    )


def _subject_errors(invalid: InvalidSubject) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for error in invalid.errors:
        name = error.pointer.rsplit("/", 1)[-1]
        if name in FIELD_NAMES:
            found.append((name, _("%(field)s is not valid.", field=FIELD_NAMES[name])))
        else:
            found.append(("bsn", _("Enter the BSN, or the family name and date of birth.")))
    return found


def _pdf(report: SubjectReport) -> BaseResponse:
    data = render_pdf(report, _, _labels())
    stamp = report.generated_at.strftime("%Y%m%d-%H%M")
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="inzage-{stamp}.pdf"'},
    )


# -- the agreement ------------------------------------------------------------------------


@bp.get("/policy")
@page("policy.read")
def policy() -> tuple[str, int]:
    """The active policy in words, its versions, and the diff of two chosen versions."""
    actor = current_actor()
    assert actor is not None
    old, new = request.args.get("from", ""), request.args.get("to", "")
    status, error = 200, None
    wanted = (old, new) if DIGEST.match(old) and DIGEST.match(new) else (None, None)
    if (old or new) and wanted == (None, None):
        status, error = 400, _("Choose two versions to compare.")
    db = db_session()
    try:
        overview = services().domain.policy_history.overview(db, actor, *wanted)
    except UnknownVersion:
        status, error = 404, _("There is no version with this fingerprint.")
        overview = services().domain.policy_history.overview(db, actor)
    db.commit()
    loaded = services().policy.loaded
    return _render(
        "web/policy.html",
        status,
        policy=loaded.policy,
        digest=loaded.digest,
        overview=overview,
        error=error,
        chosen=_chosen(overview, old, new),
        roles=ROLE_NAMES,
        alert_kinds=ALERT_KIND_NAMES,
    )


def _chosen(overview: PolicyOverview, old: str, new: str) -> dict[str, str]:
    """What the compare form shows selected: the request's, else the last two versions."""
    digests = [v.digest for v in overview.versions]
    return {
        "from": old if old in digests else (digests[1] if len(digests) > 1 else ""),
        "to": new if new in digests else (digests[0] if digests else ""),
    }


# -- alerts ----------------------------------------------------------------------------


@bp.route("/alerts", methods=["GET", "POST"])
@page("audit.read")
def alerts() -> Any:
    """The open alerts, then the handled ones, each newest first; POST runs the rules
    now (they also run every minute in the background)."""
    actor = current_actor()
    assert actor is not None
    db = db_session()
    if request.method == "POST":
        raised = services().domain.alerts.evaluate_now(db, actor)
        db.commit()
        flash(
            ngettext(
                "The rules were run: %(num)s new alert.",
                "The rules were run: %(num)s new alerts.",
                len(raised),
            ),
            "info",
        )
        return redirect(url_for("web.alerts"))
    return _alerts_page(db, actor)


@bp.post("/alerts/handled")
@page("audit.read")
def handle_alert() -> Any:
    """Mark one alert handled with a note; a refusal shows the page again, saying why."""
    actor = current_actor()
    assert actor is not None
    db = db_session()
    form = HandleAlertForm()
    alert_id, note = form.alert.data or "", form.note.data or ""
    if not form.validate():
        return _alerts_page(db, actor, 400, error=_("The form was not filled in correctly."))
    try:
        services().domain.alerts.handle(db, actor, alert_id, note)
        db.commit()
    except InvalidNote as invalid:
        db.rollback()
        return _alerts_page(
            db, actor, 400, failed=alert_id, note=note, note_error=_note_error(invalid.problem)
        )
    except AlertAlreadyHandled:
        db.rollback()
        return _alerts_page(
            db,
            actor,
            409,
            error=_(
                "This alert has already been marked handled; see who did so, and their "
                "note, under Handled alerts."
            ),
        )
    except NotFound:
        db.rollback()  # the refusal's own entry is committed
        return _alerts_page(db, actor, 404, error=_("There is no such alert."))
    flash(_("The alert is marked handled."), "success")
    return redirect(url_for("web.alerts"))


def _note_error(problem: NoteProblem) -> str:
    if problem == "empty":
        message = _("Write down what was done or concluded.")
    elif problem == "too-long":
        message = _("The note is too long: at most %(max)s characters.", max=NOTE_MAX_LENGTH)
    elif problem == "unprintable":
        message = _("The note holds characters that cannot be shown; type it again.")
    else:
        message = _("The note seems to hold a BSN or a date: leave personal data out.")
    return str(message)


def _alerts_page(db: Session, actor: Actor, status: int = 200, **context: Any) -> Any:
    found = services().domain.alerts.recent(db, actor)
    db.commit()
    return _render(
        "web/alerts.html",
        status,
        alerts=found,
        open_alerts=[a for a in found if not a.handled],
        handled_alerts=[a for a in found if a.handled],
        kinds=ALERT_KIND_NAMES,
        rules=services().policy.loaded.policy.alerts,
        note_max=NOTE_MAX_LENGTH,
        **context,
    )
