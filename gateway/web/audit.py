"""The privacy officer's audit pages: the timeline, an entry with its proof, exports and
verification runs.

Each view translates a form to one call of `AuditService` (`gateway.audit.access`) or
`VerificationRuns` (`gateway.audit.runs`), which decide access and write the audit
entries. Filters other than the person travel as query parameters; the person's
identifiers come by POST only, are pseudonymised by the subject search (audited) and
only the subject references stay, on the server, for the web session
(`gateway.audit.review`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Response, flash, redirect, request, session, stream_with_context, url_for
from flask_babel import gettext as _
from pydantic import ValidationError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from gateway.audit import review
from gateway.audit.access import Format
from gateway.audit.export import b64
from gateway.audit.queries import EntryFilter
from gateway.audit.runs import CheckpointRefused
from gateway.errors import ProblemError
from gateway.services import db_session, services
from gateway.signals.schemas import SubjectIn
from gateway.users import accounts
from gateway.web.labels import ACTION_NAMES, OUTCOME_NAMES, STEP_NAMES, organisation_names
from gateway.web.views import _render, bp, current_actor, page

PAGE_SIZE = 50
#: The GET filters: query parameter → (EntryFilter field, longest value taken).
TEXT_FILTERS = {
    "actor": ("actor_id", 128),
    "organisation": ("actor_organisation", 64),
    "action": ("action", 64),
    "rule": ("policy_rule", 128),
    "purpose": ("purpose", 128),
}
OUTCOMES = ("success", "denied", "error")
EXPORT_FORMATS: dict[str, Format] = {"csv": "csv", "jsonl": "jsonl", "ldv": "ldv"}
SUBJECT_FIELDS = ("bsn", "familyName", "givenNames", "dateOfBirth")
MAX_CHECKPOINT_UPLOAD = 8192


@dataclass(frozen=True)
class Filters:
    """The timeline's filters as given (for the form and the links) and as a query."""

    values: dict[str, str]
    where: EntryFilter
    errors: list[tuple[str, str]]

    def args(self, **extra: Any) -> dict[str, Any]:
        return {**{k: v for k, v in self.values.items() if v}, **extra}


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _filters(subjects: tuple[str, ...]) -> Filters:
    values: dict[str, str] = {}
    fields: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for name, (field, longest) in TEXT_FILTERS.items():
        value = request.args.get(name, "").strip()[:longest]
        values[name] = value
        if value:
            fields[field] = value
    outcome = request.args.get("outcome", "")
    values["outcome"] = outcome if outcome in OUTCOMES else ""
    if values["outcome"]:
        fields["outcome"] = outcome
    for name in ("from", "until"):
        raw = request.args.get(name, "").strip()[:10]
        values[name] = raw
        if not raw:
            continue
        day = _date(raw)
        if day is None:
            errors.append(("f-" + name, _("Enter a date as YYYY-MM-DD.")))
            continue
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if name == "from":
            fields["since"] = moment
        else:
            fields["until"] = moment + timedelta(days=1)  # the whole day
    return Filters(values, EntryFilter(**fields, subjects=subjects), errors)


def _session_id() -> str | None:
    token = session.get("sid")
    return accounts.session_id(token) if isinstance(token, str) else None


def _subjects() -> tuple[str, ...]:
    sid = _session_id()
    return review.subject_filter(db_session(), sid) if sid else ()


def _actor() -> Any:
    actor = current_actor()
    assert actor is not None  # @page signed the person in
    return actor


def _latest_failure() -> Any:
    runs = services().verifications.history(1)
    return runs[0] if runs and runs[0].status == "failed" else None


@bp.get("/audit")
@page("audit.read")
def audit() -> tuple[str, int]:
    """The timeline, newest first, with keyset paging down the index."""
    subjects = _subjects()
    filters = _filters(subjects)
    before = request.args.get("before") or None
    found = services().audit.timeline(_actor(), filters.where, before=before, limit=PAGE_SIZE)
    rows = [_row(e.index, e.data) for e in found.entries]
    return _render(
        "web/audit.html",
        rows=rows,
        org_names=organisation_names(r["organisation"] for r in rows),
        filters=filters,
        outcomes=OUTCOMES,
        actions=ACTION_NAMES,
        steps=STEP_NAMES,
        outcome_names=OUTCOME_NAMES,
        subject_filter=len(subjects),
        next_args=filters.args(before=found.next) if found.next else None,
        first_args=filters.args() if before else None,
        formats=EXPORT_FORMATS,
        failure=_latest_failure(),
    )


def _row(index: int, data: bytes) -> dict[str, Any]:
    entry = json.loads(data)
    actor = entry.get("actor") or {}
    resource = entry.get("resource") or {}
    return {
        "index": index,
        "time": _time(entry.get("time")),
        "actor": actor.get("id", ""),
        "actor_type": actor.get("type", ""),
        "organisation": actor.get("organisation") or "",
        "action": entry.get("action", ""),
        "step": str((entry.get("detail") or {}).get("step") or ""),
        "outcome": entry.get("outcome", ""),
        "resource": " ".join(str(v) for v in (resource.get("type"), resource.get("id")) if v),
        "rule": (entry.get("policy") or {}).get("rule") or "",
        "purpose": entry.get("purpose") or "",
        "subjects": len(entry.get("subjects") or []),
    }


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@bp.post("/audit/subject")
@page("audit.read")
def audit_subject() -> BaseResponse | tuple[str, int]:
    """Identifiers in (POST) → the person's subject references kept for this session."""
    raw = {name: (request.form.get(name) or "").strip() or None for name in SUBJECT_FIELDS}
    sid = _session_id()
    if sid is None or not any(raw.values()):
        db_session().commit()
        flash(_("Enter at least a BSN, or a family name with a date of birth."), "error")
        return redirect(url_for("web.audit"), 303)
    # The page's decision commits first: the search catches the log up (SQLite: the
    # write lock) before it opens its own session, which then also keeps the filter.
    db_session().commit()
    opened: list[Session] = []

    def open_session() -> Session:
        if not opened:
            opened.append(services().db.session(write=True))
        return opened[0]

    refused = False
    try:
        try:
            subject = SubjectIn.model_validate(raw).model_dump(by_alias=True, exclude_none=True)
            found = services().domain.subject_search.search(open_session, _actor(), subject)
        except (ValidationError, ProblemError):
            refused = True
        else:
            if found.subject_references:
                review.set_subject_filter(
                    open_session(), sid, found.subject_references, now=datetime.now(UTC)
                )
            else:
                refused = True
        if opened:
            opened[0].commit()  # the search's entry (or its refusal's) and the filter
    finally:
        if opened:
            opened[0].close()
    if refused:
        flash(
            _(
                "These identifiers cannot be searched: check the BSN (9 digits, 11-test) "
                "and the date of birth (YYYY-MM-DD)."
            ),
            "error",
        )
        return redirect(url_for("web.audit", **_kept_args()), 303)
    return redirect(url_for("web.audit", **_kept_args()), 303)


def _kept_args() -> dict[str, Any]:
    """The GET filters the subject form carried along (hidden inputs), without the person."""
    return {
        name: value[:128]
        for name in (*TEXT_FILTERS, "outcome", "from", "until")
        if (value := (request.form.get("keep-" + name) or "").strip())
    }


@bp.post("/audit/subject/clear")
@page("audit.read")
def audit_subject_clear() -> BaseResponse:
    sid = _session_id()
    if sid is not None:
        review.clear_subject_filter(db_session(), sid)
    db_session().commit()
    return redirect(url_for("web.audit", **_kept_args()), 303)


@bp.get("/audit/<int:index>")
@page("audit.read")
def audit_entry(index: int) -> tuple[str, int]:
    """One entry, its data and its inclusion proof checked against the latest checkpoint."""
    proven = services().audit.entry(_actor(), index)
    data = json.loads(proven.entry.data)
    row = _row(index, proven.entry.data)
    return _render(
        "web/audit_entry.html",
        index=index,
        row=row,
        org_names=organisation_names([row["organisation"]]),
        pretty=json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True),
        leaf_hash=b64(proven.entry.leaf_hash),
        proof=proven.proof,
        proof_hashes=[b64(h) for h in proven.proof.hashes],
        problem=proven.problem,
    )


@bp.get("/audit/export")
@page("audit.export")
def audit_export() -> Response | tuple[str, int]:
    """The filtered view as CSV, JSON Lines or LDV, streamed (the export is audited)."""
    fmt = EXPORT_FORMATS.get(request.args.get("format", ""))
    if fmt is None:
        return _render(
            "web/error.html",
            400,
            title=_("Something went wrong"),
            message=_("Choose CSV, JSON Lines or LDV."),
        )
    filters = _filters(_subjects())
    found = services().audit.export(_actor(), filters.where, fmt)
    return Response(
        stream_with_context(found.lines),
        mimetype=found.media_type,
        headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
    )


# -- verification -----------------------------------------------------------------------


@bp.get("/audit/verifications")
@page("audit.read")
def audit_verifications() -> tuple[str, int]:
    runs = services().verifications.history()
    running = [r for r in runs if r.status == "running"]
    return _render(
        "web/audit_verifications.html",
        runs=runs,
        running=running,
        latest=runs[0] if runs else None,
        max_upload=MAX_CHECKPOINT_UPLOAD,
    )


@bp.post("/audit/verifications")
@page("audit.read")
def audit_verify() -> BaseResponse:
    """Start the verifier in the background, optionally with a partner's checkpoint."""
    note = _uploaded_checkpoint()
    db_session().commit()  # the page's own decision entry
    try:
        services().verifications.start(_actor(), external=note)
    except CheckpointRefused as refused:
        reason = (
            _("the file is empty or far too long")
            if refused.empty
            else _("it is not a checkpoint of this log with a valid signature")
        )
        flash(_("The uploaded checkpoint was not accepted: %(reason)s", reason=reason), "error")
        return redirect(url_for("web.audit_verifications"), 303)
    flash(_("The verification has started. Refresh this page to follow it."), "info")
    return redirect(url_for("web.audit_verifications"), 303)


def _uploaded_checkpoint() -> str | None:
    upload = request.files.get("checkpointFile")
    if upload is not None and upload.filename:
        raw: bytes = upload.read(MAX_CHECKPOINT_UPLOAD + 1)
        return raw.decode("utf-8", errors="replace")
    text = str(request.form.get("checkpoint") or "")
    return text[: MAX_CHECKPOINT_UPLOAD + 1] if text.strip() else None
