"""`/figures`: the published figures as charts with their tables, a CSV export and a
printable page; for the privacy officer also the oversight charts from the audit log.

The page translates only: `FiguresService` asks the policy, counts, protects the small
cells and audits every view and export. Periods come in a GET form (dates, no personal
data); a period that cannot be published is shown as an error on the same page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Response, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from gateway.figures.charts import Bar, bar_chart
from gateway.figures.report import render_pdf
from gateway.figures.service import ALL, AUDIT_READ, Figures, Granularity, Oversight, PeriodRefused
from gateway.services import db_session, services
from gateway.web.labels import CATEGORY_NAMES, KIND_NAMES, capital_name
from gateway.web.views import _render, bp, current_actor, page

OUTCOME_NAMES = {
    "care-started": _l("Care started"),
    "referred": _l("Referred"),
    "police-report": _l("Police report"),
    "no-concern": _l("No concern"),
    "other": _l("Other"),
}
#: The overview: (dimension, value, label), in the order of a year report.
OVERVIEW = (
    ("signals", ALL, _l("Signals")),
    ("matches", ALL, _l("Matches")),
    ("cases.opened", ALL, _l("Cases opened")),
    ("cases.closed", ALL, _l("Cases closed")),
    ("cases.daysToCase.median", "days", _l("Median days from first signal to case")),
    ("shares", ALL, _l("Shares with partners")),
    ("signals.withdrawn", ALL, _l("Signals withdrawn")),
    ("signals.erased", ALL, _l("Signals erased (end of retention)")),
)
HIDDEN = "x"


def _name(names: Mapping[str, Any], value: str) -> str:
    """A row's or a column's head: the value's name with a capital (the kinds' and the
    categories' names are shared with pages that use them in running text)."""
    return capital_name(names, value)


@dataclass(frozen=True)
class Grid:
    """A table for the page: a caption, column heads, and rows of (head, cells)."""

    id: str
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]
    chart: Markup | None = None


def _shown(found: Figures, period: str, dimension: str, value: str) -> str:
    row = found.get(period, dimension, value)
    if row is None:
        return HIDDEN
    return f"< {found.threshold}" if row.count is None else str(row.count)


def _bars(found: Figures, items: Sequence[tuple[str, str, str, str]]) -> list[Bar]:
    bars = []
    for period, dimension, value, label in items:
        row = found.get(period, dimension, value)
        bars.append(Bar(label, None if row is None else row.count, hidden=row is None))
    return bars


def _prefix(found: Figures, period: str) -> str:
    return "" if len(found.periods) == 1 else f"{period} · "


def _by_value(
    found: Figures, grid_id: str, caption: str, dimension: str, values: Sequence[str], names: Any
) -> Grid:
    periods = [p.label for p in found.periods]
    rows = tuple(
        (_name(names, v), tuple(_shown(found, p, dimension, v) for p in periods)) for v in values
    )
    bars = _bars(
        found,
        [(p, dimension, v, _prefix(found, p) + _name(names, v)) for p in periods for v in values],
    )
    return Grid(
        grid_id, caption, tuple(periods), rows, bar_chart(grid_id, caption, bars, found.threshold)
    )


def grids(found: Figures) -> list[Grid]:
    periods = [p.label for p in found.periods]
    overview_rows = tuple(
        (str(label), tuple(_shown(found, p, d, v) for p in periods)) for d, v, label in OVERVIEW
    )
    signals_bars = _bars(
        found, [(p, "signals", ALL, _prefix(found, p) + _("Signals")) for p in periods]
    )
    result = [
        Grid(
            "overview",
            _("Overview"),
            tuple(periods),
            overview_rows,
            bar_chart("overview", _("Signals per period"), signals_bars, found.threshold)
            if len(periods) > 1
            else None,
        ),
        _by_value(
            found,
            "kinds",
            _("Signals by partner kind"),
            "signals.partnerKind",
            found.kinds,
            KIND_NAMES,
        ),
        _by_value(
            found,
            "categories",
            _("Signals by category"),
            "signals.category",
            found.categories,
            CATEGORY_NAMES,
        ),
        _by_value(
            found,
            "outcomes",
            _("Cases closed by outcome"),
            "cases.closed.outcome",
            found.outcomes,
            OUTCOME_NAMES,
        ),
    ]
    for p in periods:
        cross = tuple(
            (
                _name(KIND_NAMES, k),
                (
                    *(
                        _shown(found, p, "signals.partnerKind.category", f"{k}/{c}")
                        for c in found.categories
                    ),
                    _shown(found, p, "signals.partnerKind", k),
                ),
            )
            for k in found.kinds
        )
        totals = (
            *(_shown(found, p, "signals.category", c) for c in found.categories),
            _shown(found, p, "signals", ALL),
        )
        cross = (*cross, (_("Total"), totals))
        result.append(
            Grid(
                f"cross-{p}",
                _("Signals by partner kind and category, %(period)s", period=p),
                (*(_name(CATEGORY_NAMES, c) for c in found.categories), _("Total")),
                cross,
            )
        )
    return result


def oversight_grids(found: Oversight) -> list[Grid]:
    def cell(value: int | None, present: bool) -> str:
        if not present:
            return HIDDEN
        return f"< {found.threshold}" if value is None else str(value)

    reads = found.payload_reads
    read_rows = tuple(
        (
            _("Total") if r == ALL else r,
            tuple(cell(reads.cells.get((r, c)), (r, c) in reads.cells) for c in reads.columns),
        )
        for r in reads.rows
    )
    read_bars = [
        Bar(r, reads.cells.get((r, ALL)), hidden=(r, ALL) not in reads.cells)
        for r in reads.rows
        if r != ALL
    ]
    result = [
        Grid(
            "payload-reads",
            _("Payload reads per coordinator and purpose"),
            tuple(_("Total") if c == ALL else c for c in reads.columns),
            read_rows,
            bar_chart(
                "payload-reads",
                _("Payload reads per coordinator"),
                read_bars,
                found.threshold,
            )
            if read_bars
            else None,
        )
    ]
    for table, grid_id, caption in (
        (found.refusals, "refusals", _("Refusals by policy rule")),
        (found.rate_limits, "rate-limits", _("Rate-limit hits per client")),
    ):
        rows = tuple((r, (str(table.cells.get((r, ALL), 0)),)) for r in table.rows)
        bars = [Bar(r, table.cells.get((r, ALL), 0)) for r in table.rows]
        result.append(
            Grid(
                grid_id,
                caption,
                (_("Count"),),
                rows,
                bar_chart(grid_id, caption, bars, found.threshold) if bars else None,
            )
        )
    return result


def _period_args() -> tuple[date, date, Granularity, str | None]:
    """The form's period, defaulting to this year; an unreadable one is an error message."""
    today = date.today()
    by_arg = request.args.get("by", "year")
    by: Granularity = "quarter" if by_arg == "quarter" else "year"
    try:
        start = date.fromisoformat(request.args.get("from", f"{today.year}-01-01"))
        end = date.fromisoformat(request.args.get("to", f"{today.year}-12-31"))
    except ValueError:
        return date(today.year, 1, 1), date(today.year, 12, 31), by, _("Enter dates as YYYY-MM-DD.")
    if by_arg not in ("year", "quarter"):
        return start, end, by, _("Choose per year or per quarter.")
    return start, end, by, None


def _refused_message(error: PeriodRefused) -> str:
    days = services().policy.engine.policy.figures.minimum_period_days
    message: str = _(
        "These figures cannot be published for this period. Choose whole years (1 January "
        "to 31 December) or whole quarters, at most ten years, and periods of at least "
        "%(days)s days.",
        days=days,
    )
    return message


@bp.get("/figures")
@page("figures.read")
def figures() -> tuple[str, int]:
    actor = current_actor()
    assert actor is not None
    start, end, by, error = _period_args()
    db = db_session()
    found: Figures | None = None
    oversight: Oversight | None = None
    if error is None:
        try:
            found = services().figures.publish(db, actor, start, end, by, export="html")
            if services().figures.may(actor, AUDIT_READ):
                oversight = services().figures.oversight(db, actor, start, end)
        except PeriodRefused as refused:
            error = _refused_message(refused)
    db.commit()
    return _render(
        "web/figures.html",
        400 if error else 200,
        start=start,
        end=end,
        by=by,
        error=error,
        found=found,
        grids=grids(found) if found else [],
        oversight=oversight_grids(oversight) if oversight else [],
    )


def _export(
    export: str,
    mimetype: str,
    disposition: str,
    build: Callable[[Figures, date, date, Granularity], str | bytes],
) -> Any:
    """The form's period, published (and audited) as `export`, or the page that says why not.

    The CSV and the PDF differ only in how they lay the same figures out (`build`).
    """
    actor = current_actor()
    assert actor is not None
    start, end, by, error = _period_args()
    if error is not None:
        return _render("web/figures.html", 400, start=start, end=end, by=by, error=error)
    db = db_session()
    try:
        found = services().figures.publish(db, actor, start, end, by, export=export)
    except PeriodRefused as refused:
        return _render(
            "web/figures.html", 400, start=start, end=end, by=by, error=_refused_message(refused)
        )
    db.commit()
    name = f"ketenpoort-figures-{start.isoformat()}-{end.isoformat()}-{by}.{export}"
    return Response(
        build(found, start, end, by),
        mimetype=mimetype,
        headers={"Content-Disposition": f'{disposition}; filename="{name}"'},
    )


@bp.get("/figures/export.csv")
@page("figures.read")
def figures_csv() -> Any:
    return _export("csv", "text/csv", "attachment", _csv)


def _csv(found: Figures, start: date, end: date, by: Granularity) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["period", "dimension", "value", "count"])
    for row in found.rows:
        count = f"< {found.threshold}" if row.count is None else row.count
        writer.writerow([row.period, row.dimension, row.value, count])
    return out.getvalue()


@bp.get("/figures/report.pdf")
@page("figures.read")
def figures_pdf() -> Any:
    """The printable report: the page's tables as a PDF, audited as a `pdf` export."""
    return _export("pdf", "application/pdf", "inline", _pdf)


def _pdf(found: Figures, start: date, end: date, by: Granularity) -> bytes:
    per = _("year") if by == "year" else _("quarter")
    lines = [
        _("Period: %(start)s to %(end)s, per %(by)s.", start=start, end=end, by=per),
        _(
            '"< %(t)s" means fewer than %(t)s: small numbers are never published, so that no '
            'one can be recognised. "x" means left out, so that a small number cannot be '
            "worked out from the totals, or not published (a median over fewer than %(t)s "
            "cases).",
            t=found.threshold,
        ),
    ]
    tables = [(g.caption, g.columns, g.rows) for g in grids(found)]
    return render_pdf(_("Figures"), lines, tables)
