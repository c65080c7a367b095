"""The privacy officer's pages in a browser, on both databases: a subject report for a
demo person (on the page and as a PDF that names the accesses), the policy and the diff
between two versions, and an alert raised by a scripted probing burst, marked handled by
keyboard."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from pypdf import PdfReader

from gateway.actors import Actor
from gateway.app import create_app
from gateway.cases.service import NewCase
from gateway.demo.people import people
from gateway.policy.active import activate
from gateway.policy.loader import parse_policy
from gateway.services import close_app, services_of
from tests.alerts.test_alerts import probing_burst
from tests.oauth.support import register_partner
from tests.signals.test_api import payload_for
from tests.web.flows import sign_in
from tests.web.live import ROOT, WebGateway

PERSON = people(1)[0]
ANNA = Actor(type="user", id="anna", role="coordinator", organisation="meldpunt")
SHOTS = Path("/tmp")


def menu(page: Any) -> Any:
    return page.get_by_role("navigation", name="Hoofdmenu")


def _headers(app: Flask, org: str) -> dict[str, str]:
    partner = register_partner(app, org)
    token = partner.request_token(app.test_client()).get_json()
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture(scope="module")
def world(live: WebGateway) -> Iterator[dict[str, str]]:
    """Through the same database as the live gateway: police and care report the demo
    person, a coordinator makes a case, reads and shares; a municipality probes (submits
    and withdraws five times); a second policy version is activated."""
    app = create_app(settings=replace(live.settings, background_jobs=False, testing=True))
    try:
        client = app.test_client()
        ids = {}
        for org, category, reference in (
            ("police", "possible-victim", "BVH-2026-777"),
            ("care", "concern", "JH-2026-31"),
        ):
            headers = _headers(app, org)
            created = client.post(
                "/v1/signals",
                json={
                    "reference": reference,
                    "category": category,
                    "subject": PERSON.subject(),
                    "payload": payload_for(client, headers, category),
                },
                headers=headers,
            )
            assert created.status_code == 201, created.get_data(as_text=True)
            ids[org] = created.get_json()["id"]
        svc = services_of(app)
        with app.app_context(), svc.db.transaction() as session:
            case = svc.cases.cases.create(
                session, ANNA, NewCase("Casus", signal_ids=(ids["police"], ids["care"]))
            )
            svc.cases.payloads.read(session, ANNA, ids["care"], "case-assessment")
            svc.cases.shares.share(
                session, ANNA, case.id, ["care"], [ids["police"]], "case-meeting"
            )
        probing_burst(client, _headers(app, "municipality"), 5)
        text = (ROOT / "policies" / "twente.yaml").read_text(encoding="utf-8")
        changed = text.replace('version: "2026.1"', 'version: "2026.2"').replace(
            "    window_minutes: 60\n    threshold: 5", "    window_minutes: 60\n    threshold: 3"
        )
        old = svc.policy.digest
        new = parse_policy(changed).digest
        activate(svc.db, parse_policy(changed))
        yield {"old": old, "new": new, **ids}
    finally:
        close_app(app)


def test_the_officer_reports_on_a_demo_person(
    page: Any, live: WebGateway, world: dict[str, str], backend: str
) -> None:
    sign_in(page, live.person("privacy-officer"))
    menu(page).get_by_role("link", name="Inzageverzoek").click()
    page.get_by_label("Burgerservicenummer (BSN)").fill(PERSON.bsn)
    page.get_by_label("Achternaam").fill(PERSON.family_name)
    page.get_by_label("Geboortedatum").fill(PERSON.date_of_birth)
    page.get_by_label("Doel van dit rapport").select_option("access-request")
    page.get_by_role("button", name="Rapport tonen").click()
    report = page.locator("section", has=page.get_by_role("heading", name="Rapport"))
    for text in ("Signaal gemeld", "Melding ingezien", "Gedeeld met ketenpartners"):
        expect(report.get_by_role("cell", name=text).first).to_be_visible()
    expect(report).to_contain_text("BVH-2026-777")
    expect(report).to_contain_text("mogelijk slachtoffer")  # a category's name, not its code
    assert "possible-victim" not in report.inner_text()
    expect(report).to_contain_text("Ter beoordeling")
    expect(report).to_contain_text("AVG art. 6 lid 1 sub e")
    assert PERSON.bsn not in report.inner_text()
    assert page.url.removeprefix(live.base_url) == "/subject-report"  # nothing in the URL
    page.screenshot(path=str(SHOTS / f"subject-report-{backend}.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("button", name="Downloaden als pdf").click()
    data = Path(download.value.path()).read_bytes()
    text = re.sub(
        r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    )
    for expected in ("Inzagerapport", "Signaal gemeld", "Melding ingezien", "anna", "JH-2026-31"):
        assert expected in text, expected
    assert "TER BEOORDELING" in text and PERSON.bsn not in text
    assert "possible-victim" not in text
    reports = [e for e in live.audit() if e["action"] == "subject.report"]
    assert [e["detail"]["format"] for e in reports][-2:] == ["html", "pdf"]


def test_the_officer_reads_the_policy_and_a_diff(
    page: Any, live: WebGateway, world: dict[str, str], backend: str
) -> None:
    sign_in(page, live.person("privacy-officer"))
    menu(page).get_by_role("link", name="Privacyprotocol").click()
    expect(page.get_by_role("heading", name="Categorieën en grondslagen")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("probing-bursts"))).to_contain_text("5")
    page.get_by_label("Oudere versie").select_option(world["old"])
    page.get_by_label("Nieuwere versie").select_option(world["new"])
    page.get_by_role("button", name="Verschillen tonen").click()
    expect(page.get_by_role("heading", name=re.compile("Verschillen tussen"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("verwijderd.*threshold: 5"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("toegevoegd.*threshold: 3"))).to_be_visible()
    page.screenshot(path=str(SHOTS / f"policy-{backend}.png"), full_page=True)


def test_a_probing_burst_raises_an_alert_that_is_marked_handled(
    page: Any, live: WebGateway, world: dict[str, str], backend: str
) -> None:
    sign_in(page, live.person("privacy-officer"))
    menu(page).get_by_role("link", name="Signaleringen").click()
    page.get_by_role("button", name="Regels nu uitvoeren").click()
    row = page.get_by_role("row", name=re.compile("probing-bursts"))
    expect(row).to_contain_text("municipality")
    expect(row).to_contain_text("aftasten")
    page.screenshot(path=str(SHOTS / f"alerts-{backend}.png"), full_page=True)
    raised = [e for e in live.audit() if e["action"] == "alert.raised"]
    assert [e["detail"]["actor"] for e in raised if e["detail"]["rule"] == "probing-bursts"] == [
        "municipality"
    ]
    [burst] = [e["resource"]["id"] for e in raised if e["detail"]["rule"] == "probing-bursts"]

    # Marked handled by keyboard alone: the note field, Tab to its button, Enter.
    row.get_by_role("textbox").focus()
    page.keyboard.type("Navraag bij de gemeente: een test van hun eigen koppeling.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    handled = page.get_by_role("row", name=re.compile("probing-bursts"))
    expect(handled).to_contain_text("Navraag bij de gemeente")
    expect(handled.get_by_role("textbox")).to_have_count(0)
    [entry] = [e for e in live.audit() if e["action"] == "alert.handle"]
    assert entry["resource"]["id"] == burst and "Navraag" not in str(entry)


def test_a_coordinator_gets_403_on_the_officers_pages(page: Any, live: WebGateway) -> None:
    sign_in(page, live.person("coordinator"))
    for path in ("/subject-report", "/alerts"):
        assert page.goto(path).status == 403, path
    expect(menu(page).get_by_role("link", name="Inzageverzoek")).to_have_count(0)


def test_the_audit_log_names_what_case_work_did(
    page: Any, live: WebGateway, world: dict[str, str]
) -> None:
    """One policy action (`case.write`) covers reading and changing cases: the log's
    page says which step each entry was, in Dutch, beside the action's code."""
    sign_in(page, live.person("privacy-officer"))
    page.goto(f"{live.base_url}/audit?action=case.write")
    table = page.get_by_role("table", name="Auditregels, nieuwste eerst")
    expect(table).to_contain_text("Casuswerk: casus aangemaakt")
    expect(table).to_contain_text("case.write")
    expect(table).to_contain_text("uitgevoerd")
    page.goto(f"{live.base_url}/audit?outcome=denied")
    expect(page.get_by_label("Uitkomst")).to_have_value("denied")
    expect(page.get_by_label("Uitkomst").locator("option:checked")).to_have_text("geweigerd")
