"""Cases in a real browser (Debian's Chromium): a coordinator goes from a match to a case,
links and unlinks signals with a reason, changes status and assignment, adds a note and
shares with a partner, whose own client (`PartnerClient.shares()`) then decrypts it; a
share the policy refuses names the rule.

The gateway here has its real issuer URL (`tests.integration.live`), so that partner
clients can talk to it over HTTP as well.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.demo.people import people
from tests.client.conftest import Enrolled, enrol
from tests.integration.live import LiveGateway, live_gateway
from tests.oauth.support import DEFAULT_SCOPES
from tests.web.conftest import backend_url
from tests.web.flows import sign_in
from tests.web.live import WebGateway

SCOPES = f"{DEFAULT_SCOPES} shares:read"
PURPOSE = "Toeleiden naar hulp en opvang"  # care-referral, as the policy describes it


@dataclass
class Partners:
    police: Enrolled
    care: Enrolled
    school: Enrolled


@pytest.fixture(scope="module")
def served(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """One gateway per backend, served at its issuer URL (partner clients need that)."""
    directory = tmp_path_factory.mktemp(f"cases-{backend}")
    for url in backend_url(backend, directory):
        with live_gateway(url, directory) as gateway:
            yield gateway


@pytest.fixture(scope="module")
def live(served: LiveGateway) -> WebGateway:
    """The same gateway as the browser fixtures (`page`) know it."""
    return WebGateway(served.issuer, served.settings, served.log_path)


@pytest.fixture(scope="module")
def partners(served: LiveGateway, tmp_path_factory: pytest.TempPathFactory) -> Partners:
    folder = tmp_path_factory.mktemp("partners")
    return Partners(
        enrol(served, "police", folder, SCOPES),
        enrol(served, "care", folder, SCOPES),
        enrol(served, "education", folder, SCOPES),
    )


def submit(partner: Enrolled, category: str, subject: dict[str, str], payload: Any) -> str:
    reference = f"REF-{random.randrange(10**6):06d}"
    created = partner.client().submit_signal(reference, category, subject, payload)
    return str(created["reference"])


def flash(page: Any) -> str:
    return str(page.get_by_role("status").first.inner_text())


def test_from_a_match_to_a_shared_case(page: Any, live: WebGateway, partners: Partners) -> None:
    person, other = people(2, seed=random.randrange(2**32))
    payload = {"summary": "Meisje (15) wordt na school opgehaald door een oudere man"}
    police_ref = submit(partners.police, "possible-victim", person.subject(), payload)
    care_ref = submit(partners.care, "concern", person.subject(), {"summary": "Dure spullen"})
    perpetrator = partners.police.client().submit_signal(
        "BVH-DADER-1", "possible-perpetrator", other.subject(), {"summary": "De oudere man"}
    )
    coordinator = live.person("coordinator")
    colleague = live.person("coordinator")
    sign_in(page, coordinator)
    page.wait_for_url(re.compile(r"/$"))

    # the match queue, the match, and a case made of it
    page.goto("/matches")
    page.get_by_role("table").get_by_role("link").first.click()
    page.wait_for_url("**/matches/*")
    page.get_by_label("Titel van de casus").fill("Meisje ROC Hengelo")
    page.get_by_role("button", name="Casus aanmaken").click()
    page.wait_for_url(re.compile(r"/cases/[0-9a-f-]{36}$"))
    case_url = page.url
    case_id = case_url.rsplit("/", 1)[1]
    assert "De casus is aangemaakt." in flash(page)
    assert page.get_by_role("heading", level=1).inner_text() == "Meisje ROC Hengelo"
    signals = page.get_by_role("table", name="Signalen in deze casus")
    assert signals.get_by_role("rowheader", name=police_ref).is_visible()
    assert signals.get_by_role("rowheader", name=care_ref).is_visible()
    page.screenshot(path="/tmp/case.png", full_page=True)

    # unlink without a reason: refused in words; with a reason: gone
    page.get_by_role("button", name=f"{care_ref} ontkoppelen").click()
    assert "Geef een reden" in page.get_by_role("alert").inner_text()
    page.get_by_label(f"Reden om {care_ref} te ontkoppelen").fill("Ander meisje, zelfde school")
    page.get_by_role("button", name=f"{care_ref} ontkoppelen").click()
    assert "uit de casus gehaald" in flash(page)
    assert signals.get_by_role("rowheader", name=care_ref).count() == 0

    # link a signal by its id, with a reason
    page.get_by_label("Id van het signaal").fill(perpetrator["id"])
    page.get_by_label("Reden om te koppelen").fill("De man die haar ophaalt")
    page.get_by_role("button", name="Signaal koppelen").click()
    assert "gekoppeld" in flash(page)
    assert signals.get_by_role("rowheader", name="BVH-DADER-1").is_visible()

    # status, assignment, a note
    page.get_by_label("Status", exact=True).select_option("closed")
    page.get_by_role("button", name="Status opslaan").click()
    assert "uitkomst" in page.get_by_role("alert").inner_text()
    page.get_by_label("Status", exact=True).select_option("in-progress")
    page.get_by_role("button", name="Status opslaan").click()
    assert "De status is gewijzigd." in flash(page)
    page.get_by_label("Coördinator").select_option(colleague.name)
    page.get_by_role("button", name="Toewijzen").click()
    assert colleague.name in flash(page)
    page.get_by_label("Nieuwe notitie").fill("Gesprek met mentor gepland")
    page.get_by_role("button", name="Notitie toevoegen").click()
    assert "De notitie is toegevoegd." in flash(page)
    assert page.get_by_text("Gesprek met mentor gepland").is_visible()

    # a share the policy refuses names the rule; nothing reaches the school
    share = page.get_by_role("group", name="Te delen signalen")
    share.get_by_label(police_ref, exact=False).check()
    page.get_by_role("group", name="Ontvangende organisaties").get_by_label(
        partners.school.org, exact=False
    ).check()
    page.get_by_label(PURPOSE, exact=False).check()
    page.get_by_role("button", name="Delen met de gekozen organisaties").click()
    refused = page.get_by_role("alert").inner_text()
    assert "deny:recipient-kind-not-allowed" in refused and "privacyprotocol" in refused

    # the share with care: its own client decrypts it
    page.goto(case_url)
    page.get_by_role("group", name="Te delen signalen").get_by_label(
        police_ref, exact=False
    ).check()
    page.get_by_role("group", name="Ontvangende organisaties").get_by_label(
        partners.care.org, exact=False
    ).check()
    page.get_by_label(PURPOSE, exact=False).check()
    page.get_by_role("button", name="Delen met de gekozen organisaties").click()
    assert "De signalen zijn gedeeld." in flash(page)
    history = page.get_by_role("table", name="Verstrekkingen, nieuwste eerst")
    assert "gedeeld" in history.inner_text()
    (received,) = [s for s in partners.care.client().shares() if s["caseId"] == case_id]
    assert received["purpose"] == "care-referral"
    assert [json.loads(s["content"]) for s in received["signals"]] == [payload]
    assert not [s for s in partners.school.client().shares() if s["caseId"] == case_id]

    # a perpetrator's signal waits for a second coordinator
    page.get_by_role("group", name="Te delen signalen").get_by_label(
        "BVH-DADER-1", exact=False
    ).check()
    page.get_by_role("group", name="Ontvangende organisaties").get_by_label(
        partners.police.org, exact=False
    ).check()
    page.get_by_label(PURPOSE, exact=False).check()
    page.get_by_role("button", name="Delen met de gekozen organisaties").click()
    assert "wacht op goedkeuring" in flash(page)
    assert "wacht op goedkeuring" in history.inner_text()
    page.screenshot(path="/tmp/case-shared.png", full_page=True)

    page.goto("/cases")
    row = page.get_by_role("row", name=re.compile("Meisje ROC Hengelo"))
    assert "In behandeling" in row.inner_text() and colleague.name in row.inner_text()
    page.screenshot(path="/tmp/cases.png", full_page=True)

    # every step in the audit log, with the reasons and the rules
    entries = live.audit(coordinator.name)
    steps = [(e["action"], e["detail"].get("step"), e["outcome"]) for e in entries]
    for step in ("create", "unlink", "link", "update", "note.add"):
        assert ("case.write", step, "success") in steps, step
    assert ("case.share", "share", "success") in steps
    assert ("case.share", "share.request", "success") in steps
    denied = [e for e in entries if e["action"] == "case.share" and e["outcome"] == "denied"]
    assert denied and denied[0]["policy"]["rule"] == "deny:recipient-kind-not-allowed"
    reasons = [e["detail"].get("reason") for e in entries if e["detail"].get("step")]
    assert "Ander meisje, zelfde school" in reasons and "De man die haar ophaalt" in reasons
    assert "Gesprek met mentor" not in json.dumps(entries)  # notes are never in the log


def test_an_unknown_case_is_a_404_page(page: Any, live: WebGateway) -> None:
    sign_in(page, live.person("coordinator"))
    page.wait_for_url(re.compile(r"/$"))
    response = page.goto("/cases/00000000-0000-0000-0000-000000000000")
    assert response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Pagina niet gevonden"
    page.goto("/cases")
    assert page.get_by_role("heading", level=1).inner_text() == "Casussen"
