"""Four eyes in two browsers: coordinator A asks to read a signal about a possible
perpetrator, coordinator B approves it on /approvals, A reads it once; the next read
needs a new approval, which B refuses with a reason that A then sees. One cannot
approve one's own request, and a category without four eyes is read straight away."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.app import create_app
from gateway.cases.service import NewCase
from gateway.services import close_app, services
from tests.cases.conftest import ANNA, Clock, World
from tests.web.flows import sign_in
from tests.web.live import Person, WebGateway

PERPETRATOR_TEXT = "Man (30) haalt meisjes op bij het station Hengelo"
VICTIM_TEXT = "Meisje (15) komt met dure spullen naar school"
PURPOSE = "Voorbereiden van het casusoverleg"
REASON = "Geen casusoverleg gepland deze week"


@dataclass(frozen=True)
class Case:
    id: str
    perpetrator: str
    victim: str

    def payload(self, signal_id: str) -> str:
        return f"/cases/{self.id}/signals/{signal_id}/payload"


@pytest.fixture(scope="module")
def case(live: WebGateway) -> Case:
    """A case in the live gateway: a signal about a possible perpetrator and one about
    a possible victim, stored through the services (real JWEs for the meldpunt key)."""
    app = create_app(settings=live.settings)
    try:
        with app.app_context():
            world = World(app, app.test_client(), services().cases, Clock())
        perpetrator = world.signal(
            "politie-oost", "police", "possible-perpetrator", PERPETRATOR_TEXT
        )
        victim = world.signal("zorg-twente", "care", "possible-victim", VICTIM_TEXT)
        with world.session() as session:
            made = world.svc.cases.create(
                session, ANNA, NewCase("Casus station Hengelo", signal_ids=(perpetrator, victim))
            )
            session.commit()
    finally:
        close_app(app)
    return Case(made.id, perpetrator, victim)


@pytest.fixture
def two(browser: Any, live: WebGateway) -> Iterator[tuple[Any, Person, Any, Person]]:
    """Two coordinators, each signed in in a browser context of their own."""
    contexts = []
    found: list[Any] = []
    for _ in range(2):
        context = browser.new_context(base_url=live.base_url, locale="nl-NL")
        contexts.append(context)
        page = context.new_page()
        person = live.person("coordinator")
        sign_in(page, person)
        page.wait_for_url(re.compile(r"/$"))
        found += [page, person]
    try:
        yield found[0], found[1], found[2], found[3]
    finally:
        for context in contexts:
            context.close()


def _read(page: Any) -> Any:
    """Choose the purpose and read; the POST's response."""
    page.get_by_label(PURPOSE).check()
    with page.expect_response(lambda r: r.request.method == "POST") as response:
        page.get_by_role("button", name="Melding inzien").click()
    page.wait_for_load_state()
    return response.value


def _request(page: Any) -> None:
    page.get_by_label(PURPOSE).check()
    page.get_by_role("button", name="Goedkeuring aanvragen").click()
    page.wait_for_url("**/payload")
    assert "Uw verzoek is verstuurd" in page.get_by_role("status").first.inner_text()


def _request_section(page: Any, requester: Person) -> Any:
    return page.locator("section").filter(
        has=page.get_by_role("heading", name=f"Inzage in een melding: {requester.name}")
    )


def test_a_four_eyes_read_approved_by_another_is_read_once(
    two: tuple[Any, Person, Any, Person], live: WebGateway, case: Case
) -> None:
    a, anna, b, bram = two
    a.goto(case.payload(case.perpetrator))
    assert "Vier ogen" in a.get_by_role("main").inner_text()
    refused = _read(a)
    assert refused.status == 403
    assert "eerst goedkeuring van een tweede coördinator" in a.get_by_role("alert").inner_text()
    assert PERPETRATOR_TEXT not in a.content()

    _request(a)
    assert "wacht op een tweede coördinator" in a.get_by_role("main").inner_text()
    a.screenshot(path="/tmp/reads-payload-requested.png", full_page=True)

    # A cannot approve her own request: no button, and a forged form is refused
    a.goto("/approvals")
    assert "Wacht op een tweede coördinator" in a.get_by_role("table").inner_text()
    assert a.get_by_role("button", name="Goedkeuren").count() == 0
    request_id = next(
        e["detail"]["approval"]
        for e in reversed(live.audit(anna.name))
        if e["detail"].get("step") == "approval.request"
    )
    token = a.locator("input[name=csrf_token]").first.get_attribute("value")
    own = a.request.post(
        "/approvals", form={"csrf_token": token, "approval": request_id, "decision": "approve"}
    )
    assert own.status == 403, live.log()[-6000:]
    assert "U kunt uw eigen verzoek niet goedkeuren" in own.text()

    # B approves it on /approvals
    b.goto("/approvals")
    section = _request_section(b, anna)
    assert PURPOSE in section.inner_text() and "Casus station Hengelo" in section.inner_text()
    b.screenshot(path="/tmp/reads-approvals.png", full_page=True)
    section.get_by_role("button", name="Goedkeuren").click()
    b.wait_for_url("**/approvals")
    assert "Het verzoek is goedgekeurd" in b.get_by_role("status").first.inner_text()
    assert _request_section(b, anna).count() == 0

    # A reads it once: the content on the POST's answer, not cached, nothing in the URL
    a.goto(case.payload(case.perpetrator))
    assert f"goedgekeurd door {bram.name}" in a.get_by_role("main").inner_text()
    read = _read(a)
    assert read.status == 200 and read.headers["cache-control"] == "no-store"
    assert a.locator("#payload-content").inner_text() == PERPETRATOR_TEXT
    assert "vraag dan opnieuw een tweede coördinator" in a.get_by_role("status").first.inner_text()
    assert a.url == live.base_url + case.payload(case.perpetrator)
    a.screenshot(path="/tmp/reads-payload-read.png", full_page=True)

    # ... and only once
    a.goto(case.payload(case.perpetrator))
    assert _read(a).status == 403 and PERPETRATOR_TEXT not in a.content()

    # a new request, which B refuses with a reason that A sees
    _request(a)
    b.goto("/approvals")
    section = _request_section(b, anna)
    section.get_by_role("button", name="Afwijzen").click()  # without a reason first
    assert "Geef de reden waarom u dit verzoek afwijst" in b.get_by_role("alert").inner_text()
    section = _request_section(b, anna)
    section.get_by_label("Reden van afwijzing").fill(REASON)
    section.get_by_role("button", name="Afwijzen").click()
    b.wait_for_url("**/approvals")
    assert "Het verzoek is afgewezen" in b.get_by_role("status").first.inner_text()
    a.goto("/approvals")
    assert f"Afgewezen door {bram.name}: {REASON}" in a.get_by_role("table").inner_text()
    a.screenshot(path="/tmp/reads-approvals-own.png", full_page=True)

    steps = [
        (e["detail"].get("step"), e["outcome"], e["actor"]["id"], e["purpose"])
        for e in live.audit()
        if e["action"] == "payload.read" and e["actor"]["id"] in {anna.name, bram.name}
    ]
    assert ("approval.request", "success", anna.name, "case-meeting") in steps
    assert ("approval.approve", "success", bram.name, "case-meeting") in steps
    assert ("read", "success", anna.name, "case-meeting") in steps
    assert ("approval.refuse", "success", bram.name, "case-meeting") in steps
    assert (None, "denied", anna.name, "case-meeting") in steps  # the reads without approval
    assert PERPETRATOR_TEXT not in live.log() and PERPETRATOR_TEXT not in str(live.audit())


def test_a_category_without_four_eyes_is_read_at_once(
    page: Any, live: WebGateway, case: Case
) -> None:
    person = live.person("coordinator")
    sign_in(page, person)
    page.wait_for_url(re.compile(r"/$"))
    page.goto(case.payload(case.victim))
    assert page.get_by_role("button", name="Goedkeuring aanvragen").count() == 0
    page.screenshot(path="/tmp/reads-payload-form.png", full_page=True)
    read = _read(page)
    assert read.status == 200 and read.headers["cache-control"] == "no-store"
    assert page.locator("#payload-content").inner_text() == VICTIM_TEXT
    assert "tweede coördinator" not in page.get_by_role("status").first.inner_text()
    entry = [e for e in live.audit(person.name) if e["action"] == "payload.read"][-1]
    assert entry["outcome"] == "success" and entry["purpose"] == "case-meeting"
    assert entry["policy"]["rule"] == "coordinator-reads-payload"
