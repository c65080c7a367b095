"""`GET /v1/figures`: the contract's shape, suppression across periods, refusals, audit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.partners.registry import RegistryError
from tests.figures.conftest import Seeder, at

FIGURES = "/v1/figures?from=2025-01-01&to=2025-12-31&by={by}"


@pytest.fixture
def seeded(app: Flask) -> Seeder:
    seed = Seeder(app)
    # 2025: police report 12 possible victims in Q1, care 7 concerns in Q2, school 2 in Q3
    police = seed.signals(at(2025, 2), "police", "possible-victim", 12)
    seed.signals(at(2025, 5), "care", "concern", 7)
    seed.signals(at(2025, 8), "education", "concern", 2)
    seed.matches(at(2025, 3), 6)
    for i in range(7):
        seed.case(at(2025, 3, 20), police[i : i + 2], closed="referred" if i < 6 else "Iets")
    seed.withdraw(at(2025, 11), 1)
    seed.erasures(at(2025, 12), 3)
    return seed


def _get(client: FlaskClient, headers: dict[str, str], by: str = "year") -> Any:
    response = client.get(FIGURES.format(by=by), headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _cells(body: dict[str, Any]) -> dict[tuple[str, str, str], Any]:
    return {(r["period"], r["dimension"], r["value"]): r["count"] for r in body["rows"]}


def test_the_year_in_the_contract_shape_with_small_cells_as_less_than_five(
    client: FlaskClient, token_headers: Any, seeded: Seeder
) -> None:
    headers = token_headers("meldpunt", "figures:read")
    body = _get(client, headers)
    assert list(body) == ["from", "to", "by", "threshold", "rows"]
    assert (body["from"], body["to"], body["by"], body["threshold"]) == (
        "2025-01-01",
        "2025-12-31",
        "year",
        5,
    )
    for row in body["rows"]:
        assert set(row) == {"period", "dimension", "value", "count"}
        assert row["count"] == "< 5" or (isinstance(row["count"], int) and row["count"] >= 5)
    cells = _cells(body)
    assert cells[("2025", "signals.partnerKind", "education")] == "< 5"
    assert cells[("2025", "signals.withdrawn", "all")] == "< 5"
    assert cells[("2025", "signals.erased", "all")] == "< 5"
    assert cells[("2025", "signals.category", "possible-victim")] == 12
    assert cells[("2025", "cases.opened", "all")] == 7
    assert cells[("2025", "cases.closed.outcome", "referred")] == 6
    assert cells[("2025", "cases.closed.outcome", "other")] == "< 5"
    # the total stays: the other outcomes' "< 5" (zeros) keep the single "other" hidden
    assert cells[("2025", "cases.closed", "all")] == 7
    assert cells[("2025", "matches", "all")] == 6
    assert cells[("2025", "cases.daysToCase.median", "days")] == 33
    assert "Iets" not in json.dumps(body)  # an outcome typed freely is never published


def test_year_and_quarters_together_give_no_small_cell_away(
    client: FlaskClient, token_headers: Any, seeded: Seeder
) -> None:
    headers = token_headers("gemeente-enschede", "figures:read", kind="municipality")
    year = _cells(_get(client, headers, "year"))
    quarters = _cells(_get(client, headers, "quarter"))
    positions = {(d, v) for (_, d, v) in year} | {(d, v) for (_, d, v) in quarters}
    for dimension, value in positions:
        if dimension == "cases.daysToCase.median":
            continue
        shown = [quarters.get((f"2025-Q{q}", dimension, value)) for q in range(1, 5)]
        shown.append(year.get(("2025", dimension, value)))
        unknown = sum(not isinstance(v, int) for v in shown)
        assert unknown != 1, (dimension, value, shown)
        if unknown == 0:
            assert sum(shown[:4]) == shown[4]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("to=2025-12-31&by=year", "invalid-input"),
        ("from=2025-01-01&to=2025-12-31&by=month", "invalid-input"),
        ("from=2025-13-01&to=2025-12-31", "invalid-input"),
        ("from=2025-01-01&to=2025-12-31&x=1", "invalid-input"),
        ("from=2025-02-01&to=2025-12-31&by=year", "period-refused"),
        ("from=2025-01-01&to=2025-03-30&by=quarter", "period-refused"),
        ("from=2025-04-01&to=2025-03-31&by=quarter", "period-refused"),
        ("from=2001-01-01&to=2025-12-31&by=year", "period-refused"),
    ],
)
def test_bad_parameters_are_problems(
    client: FlaskClient, token_headers: Any, query: str, problem: str
) -> None:
    response = client.get(f"/v1/figures?{query}", headers=token_headers("meldpunt", "figures:read"))
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"].endswith(f"/problems/{problem}")


def test_periods_shorter_than_the_policy_minimum_are_refused(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    policy = app.extensions["ketenpoort"].policy.engine.policy
    object.__setattr__(policy.figures, "minimum_period_days", 100)
    response = client.get(
        "/v1/figures?from=2025-01-01&to=2025-12-31&by=quarter",
        headers=token_headers("meldpunt", "figures:read"),
    )
    assert response.status_code == 400
    assert "shorter than 100 days" in response.get_json()["detail"]


def test_scope_and_policy(client: FlaskClient, token_headers: Any) -> None:
    url = FIGURES.format(by="year")
    police = token_headers("police", "signals:write")
    assert client.get(url, headers=police).status_code == 403
    with pytest.raises(RegistryError, match="scopes must be among"):
        token_headers("police", "figures:read")


def test_every_request_is_audited_as_an_export(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    headers = token_headers("meldpunt", "figures:read")
    _get(client, headers)
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        entries = [
            json.loads(d)
            for d in session.execute(
                select(AuditEntryRow.data).where(AuditEntryRow.action == "figures.read")
            ).scalars()
        ]
    assert len(entries) == 1
    assert entries[0]["detail"] == {
        "step": "export",
        "format": "json",
        "from": "2025-01-01",
        "to": "2025-12-31",
        "by": "year",
        "rows": entries[0]["detail"]["rows"],
    }
    assert entries[0]["policy"]["rule"] == "meldpunt-and-municipality-read-figures"
