"""`GET /v1/figures`: the published figures (scope `figures:read`), audited as an export."""

from __future__ import annotations

from datetime import date
from typing import Literal

from flask import Blueprint, Response
from pydantic import ConfigDict, Field

from gateway.api.models import ApiModel
from gateway.api.openapi import operation
from gateway.api.validation import json_response, parse_query
from gateway.figures.service import Figures
from gateway.security import current_actor
from gateway.services import db_session, services

bp = Blueprint("figures", __name__)


class FiguresQuery(ApiModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    from_: date = Field(
        alias="from", description="First day: the 1st of January, or the first day of a quarter."
    )
    to: date = Field(description="Last day: the 31st of December, or the last day of a quarter.")
    by: Literal["year", "quarter"] = Field(default="year", description="One row set per period.")


class FigureRow(ApiModel):
    period: str = Field(description='The year ("2026") or quarter ("2026-Q3").', examples=["2026"])
    dimension: str = Field(
        description=(
            "What is counted: `signals` (value `all`), `signals.partnerKind`, "
            "`signals.category`, `signals.partnerKind.category` (value `kind/category`), "
            "`matches`, `cases.opened`, `cases.closed`, `cases.closed.outcome`, "
            "`cases.daysToCase.median` (value `days`: the median number of days from a "
            "case's first signal to the case, only over at least `threshold` cases), "
            "`shares`, `signals.withdrawn`, `signals.erased`."
        ),
        examples=["signals.category"],
    )
    value: str = Field(examples=["possible-victim"])
    count: int | str = Field(
        description=(
            'A number, or "< threshold" (e.g. "< 5") for a count below the threshold. A cell '
            "hidden only so that a small one cannot be worked out from the totals "
            "(complementary suppression) is left out of `rows`."
        ),
        json_schema_extra={
            "oneOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": "^< [0-9]+$"},
            ]
        },
    )


class FiguresOut(ApiModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    from_: date = Field(alias="from")
    to: date
    by: Literal["year", "quarter"]
    threshold: int = Field(description="Counts below this are never published as a number.")
    rows: list[FigureRow]


def figures_out(found: Figures) -> FiguresOut:
    below = f"< {found.threshold}"
    return FiguresOut(
        from_=found.start,
        to=found.end,
        by=found.by,
        threshold=found.threshold,
        rows=[
            FigureRow(
                period=r.period,
                dimension=r.dimension,
                value=r.value,
                count=below if r.count is None else r.count,
            )
            for r in found.rows
        ],
    )


@bp.get("/v1/figures")
@operation(
    operation_id="getFigures",
    summary="Counts per year or quarter, small counts suppressed",
    description=(
        "Signals by partner kind and category, matches, cases opened and closed (by "
        "outcome), the median days from first signal to case, shares, withdrawals and "
        "erasures — from metadata and the audit log, never from payloads. Periods start "
        "and end on year or quarter boundaries and are at least the policy's minimum "
        "length (else 400 `period-refused`). Each request is audited as an export."
    ),
    tags=("figures",),
    query=FiguresQuery,
    response=FiguresOut,
    scopes=("figures:read",),
    errors=(400,),
)
def get_figures() -> Response:
    query = parse_query(FiguresQuery)
    found = services().figures.publish(
        db_session(), current_actor(), query.from_, query.to, query.by, export="json"
    )
    db_session().commit()
    return json_response(figures_out(found))
