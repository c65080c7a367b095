"""`/figures` without a browser: who sees it, what it shows, the CSV and refused periods."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from tests.figures.conftest import Seeder, at
from tests.web.test_pages import _signed_in


def _seed_this_year(app: Flask) -> None:
    seed = Seeder(app)
    year = date.today().year
    seed.signals(at(year, 1), "police", "possible-victim", 9)
    seed.signals(at(year, 1), "care", "concern", 3)
    seed.matches(at(year, 1), 2)


def test_the_coordinator_sees_this_years_figures_with_small_cells_hidden(
    app: Flask, client: FlaskClient
) -> None:
    _seed_this_year(app)
    _signed_in(app, client, "c.jansen", "coordinator")
    response = client.get("/figures")
    assert response.status_code == 200
    assert (
        response.headers["Cache-Control"].startswith("no-store")
        or "no-store" in (response.headers["Cache-Control"])
    )
    html = response.get_data(as_text=True)
    assert '<html lang="nl">' in html and "Cijfers" in html
    assert '<svg class="kp-chart"' in html and "style=" not in html
    # the charts carry no script: the page's only one is the session warning's file
    assert html.count("<script") == 1 and '<script src="/static/session.js"' in html
    assert "&lt; 5" in html  # the 3 care signals and the 2 matches
    assert ">3<" not in html and ">2<" not in html
    assert ">9<" in html  # police, possible victim: published
    assert "Toezicht" not in html  # the oversight charts are the privacy officer's
    nav = re.search(r'<nav class="utrecht-nav-bar".*?</nav>', html, re.S)
    assert nav and 'href="/figures"' in nav.group(0)


def test_the_privacy_officer_also_sees_the_oversight_charts(
    app: Flask, client: FlaskClient
) -> None:
    _signed_in(app, client, "p.visser", "privacy-officer")
    html = client.get("/figures?by=quarter&from=2025-01-01&to=2025-12-31").get_data(as_text=True)
    assert "Toezicht" in html and "2025-Q3" in html
    assert "Inzage in meldingen per coördinator en doel" in html
    assert "Niets te tellen in deze periode." in html  # no payload reads in 2025


def test_csv_export_is_audited(app: Flask, client: FlaskClient) -> None:
    _seed_this_year(app)
    _signed_in(app, client, "c.jansen", "coordinator")
    year = date.today().year
    response = client.get(f"/figures/export.csv?from={year}-01-01&to={year}-12-31&by=year")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    found = {(r["dimension"], r["value"]): r["count"] for r in rows}
    assert found[("signals.category", "possible-victim")] == "9"
    assert found[("matches", "all")] == "< 5"
    assert all(r["count"] == "< 5" or int(r["count"]) >= 5 for r in rows)
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        formats = [
            json.loads(d)["detail"]["format"]
            for d in session.execute(
                select(AuditEntryRow.data).where(AuditEntryRow.action == "figures.read")
            ).scalars()
        ]
    assert "csv" in formats


def test_a_period_that_cannot_be_published_is_an_error_on_the_page(
    app: Flask, client: FlaskClient
) -> None:
    _signed_in(app, client, "c.jansen", "coordinator")
    for query in ("from=2025-02-01&to=2025-12-31", "from=nonsense", "by=week"):
        response = client.get(f"/figures?{query}")
        assert response.status_code == 400, query
        assert 'role="alert"' in response.get_data(as_text=True)
    assert client.get("/figures/export.csv?from=2025-02-01&to=2025-12-31").status_code == 400


def test_the_administrator_has_no_figures(app: Flask, client: FlaskClient) -> None:
    _signed_in(app, client, "b.beheer", "admin")
    assert client.get("/figures").status_code == 403


def test_the_printable_report_is_a_pdf_and_audited(app: Flask, client: FlaskClient) -> None:
    _seed_this_year(app)
    _signed_in(app, client, "c.jansen", "coordinator")
    year = date.today().year
    response = client.get(f"/figures/report.pdf?from={year}-01-01&to={year}-12-31&by=year")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.get_data().startswith(b"%PDF-")

    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        formats = [
            json.loads(d)["detail"]["format"]
            for d in session.execute(
                select(AuditEntryRow.data).where(AuditEntryRow.action == "figures.read")
            ).scalars()
        ]
    assert "pdf" in formats
