"""`/policy`: the agreement in Dutch, its versions with who activated them, and a diff."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from gateway.policy.active import activate
from gateway.policy.loader import parse_policy
from gateway.services import services_of
from tests.web.test_pages import _signed_in

ROOT = Path(__file__).resolve().parents[2]


def second_version(app: Flask) -> tuple[str, str]:
    """Activate a changed policy (a lower probing threshold, version 2026.2)."""
    svc = services_of(app)
    text = (ROOT / "policies" / "twente.yaml").read_text(encoding="utf-8")
    changed = text.replace('version: "2026.1"', 'version: "2026.2"').replace(
        "    kind: submit-withdraw-bursts\n    window_minutes: 60\n    threshold: 5",
        "    kind: submit-withdraw-bursts\n    window_minutes: 60\n    threshold: 3",
    )
    assert changed != text
    loaded = parse_policy(changed)
    assert activate(svc.db, loaded)
    return svc.policy.digest, loaded.digest


def test_the_policy_page_reads_in_dutch_and_shows_a_diff(app: Flask, client: FlaskClient) -> None:
    old, new = second_version(app)
    _signed_in(app, client, "p.visser", "privacy-officer")
    page = client.get("/policy")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    for text in (
        "Categorieën en grondslagen",
        "AVG art. 9 lid 2 sub g",
        "730 dagen",
        "Vier-ogenregels",
        "coordinator-reads-payload",
        "Aansluittest",  # the category reserved for conformance tests
        "probing-bursts",  # the alert rules with their thresholds
        "Ketenpoort, bij het starten",
        old,
        new,
    ):
        assert text in html, text
    diff = client.get(f"/policy?from={old}&to={new}")
    html = diff.get_data(as_text=True)
    assert diff.status_code == 200
    assert "- verwijderd" in html and "+ toegevoegd" in html
    assert "threshold: 5" in html and "threshold: 3" in html
    assert "version: &#39;2026.2&#39;" in html or "version: '2026.2'" in html
    assert client.get(f"/policy?from={old}&to={'0' * 64}").status_code == 404
    assert client.get("/policy?from=x&to=y").status_code == 400


def test_everyone_on_the_staff_may_read_it(app: Flask, client: FlaskClient) -> None:
    _signed_in(app, client, "c.jansen", "coordinator")
    assert client.get("/policy").status_code == 200
