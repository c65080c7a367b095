"""The web intake in a browser: a school's professional signs in, files a signal about a
person the police reported through the API, sees the receipt, and the coordinator's
match queue has both; then the professional withdraws a signal."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask

from gateway.actors import cli_actor
from gateway.app import create_app
from gateway.matching.processor import hit_policy_of, process_outbox
from gateway.services import close_app
from gateway.users.models import UserRow
from gateway.users.service import add_user
from tests.oauth.support import register_partner
from tests.signals.test_api import SUBJECT, body
from tests.web.flows import sign_in
from tests.web.live import Person, WebGateway

SCHOOL = "roc-twente"
POLICE = "politie-oost"


@pytest.fixture(scope="module")
def beside(live: WebGateway) -> Iterator[Flask]:
    """An app on the live gateway's database and keys, for what the browser does not do:
    registering partners, a police system's API call, the matching catch-up."""
    app = create_app(settings=replace(live.settings, testing=True, background_jobs=False))
    register_partner(app, SCHOOL, kind="education")
    yield app
    close_app(app)


def _professional(app: Flask) -> Person:
    svc = app.extensions["ketenpoort"]
    name = f"mentor.{secrets.token_hex(3)}"
    password = "demo-" + secrets.token_urlsafe(12)
    with svc.db.transaction() as session:
        created = add_user(
            session,
            svc.keys,
            name=name,
            role="professional",
            actor=cli_actor(),
            organisation=SCHOOL,
        )
        row = session.get(UserRow, created.id)
        assert row is not None
        row.password_hash = PasswordHasher().hash(password)
        row.must_change_password = False
        row.password_changed_at = datetime.now(UTC)
    return Person(name, "professional", password, created.totp_secret)


def _police_signal(app: Flask) -> str:
    """The police's partner system reports the person through `POST /v1/signals`."""
    client = app.test_client()
    partner = register_partner(app, POLICE, kind="police")
    token = partner.request_token(client).get_json()
    headers = {"Authorization": f"{token['token_type']} {token['access_token']}"}
    created = client.post(
        "/v1/signals", json=body(client, headers, "BVH-2026-777"), headers=headers
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    signal_id: str = created.get_json()["id"]
    return signal_id


def _file(page: Any, reference: str, **subject: str) -> None:
    person = {**SUBJECT, **subject}
    page.goto("/intake")
    page.get_by_label("BSN (burgerservicenummer)").fill(person["bsn"])
    page.get_by_label("Achternaam").fill(person["familyName"])
    page.get_by_label("Voornamen").fill(person["givenNames"])
    page.get_by_label("Geboortedatum").fill(person["dateOfBirth"])
    page.get_by_label("Zorgsignaal").check()
    page.get_by_label("Melding", exact=True).fill(
        "Ze verzuimt veel en wordt na school opgehaald door een oudere man met een dure auto."
    )
    page.get_by_label("Uw eigen kenmerk (niet verplicht)").fill(reference)
    page.get_by_role("button", name="Signaal naar het meldpunt sturen").click()


def test_a_professional_files_a_signal_that_matches_the_polices(
    page: Any, live: WebGateway, beside: Flask
) -> None:
    police_id = _police_signal(beside)
    professional = _professional(beside)
    sign_in(page, professional)
    page.wait_for_url(re.compile(r"/$"))
    page.get_by_role("navigation").get_by_role("link", name="Signaal melden").click()
    page.wait_for_url("**/intake")

    # a wrong BSN: the form again, a message at the field, nothing stored
    _file(page, "MENTOR-0", bsn=SUBJECT["bsn"][:8] + "4")
    assert page.get_by_role("alert").get_by_role("link", name=re.compile("elfproef")).is_visible()
    assert page.get_by_label("BSN (burgerservicenummer)").get_attribute("aria-invalid") == "true"
    assert page.get_by_text("U hebt nog geen signalen gemeld.").is_visible()

    _file(page, "MENTOR-1")
    page.wait_for_url("**/intake")
    receipt = page.locator("#receipt")
    assert receipt.get_by_role("heading", name="Uw signaal is ontvangen").is_visible()
    leaf_hash = receipt.locator("dd code").nth(1).inner_text()
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", leaf_hash)
    row = page.get_by_role("row", name=re.compile("MENTOR-1"))
    assert row.get_by_role("cell", name="Zorgsignaal").is_visible()
    assert row.get_by_role("cell", name="actief").is_visible()
    page.screenshot(path="/tmp/intake.png", full_page=True)
    entries = live.audit(professional.name)
    created = [e for e in entries if e["action"] == "signal.create"]
    assert len(created) == 1 and created[0]["policy"]["rule"] == "professional-submits-signal"

    # the matching catch-up (the background job's work), then the coordinator's queue
    svc = beside.extensions["ketenpoort"]
    process_outbox(svc.db, hit_policy_of(svc.policy.engine))
    coordinator = page.context.browser.new_context(base_url=live.base_url, locale="nl-NL")
    queue = coordinator.new_page()
    sign_in(queue, live.person("coordinator"))
    queue.wait_for_url(re.compile(r"/$"))
    queue.goto("/matches")
    # the partners by their names (`register_partner` names them after their ids)
    match = queue.get_by_role("row", name=re.compile(SCHOOL.capitalize()))
    # the row's link names, for a screen reader, the partners whose match it opens
    link = match.get_by_role("link", name=re.compile(f"Treffer van .*{POLICE.capitalize()}"))
    assert link.is_visible()
    link.click()
    queue.wait_for_url("**/matches/*")
    assert queue.get_by_text("BVH-2026-777").is_visible()
    assert queue.get_by_text("MENTOR-1").is_visible()
    coordinator.close()
    assert police_id

    # a second signal, filed in error, is withdrawn
    _file(page, "MENTOR-2", bsn="", familyName="Jansen", dateOfBirth="2010-02-03")
    page.wait_for_url("**/intake")
    page.get_by_role("button", name="MENTOR-2 intrekken").click()
    page.wait_for_url("**/intake")
    assert page.get_by_text("Signaal MENTOR-2 is ingetrokken.").is_visible()
    withdrawn = page.get_by_role("row", name=re.compile("MENTOR-2"))
    assert withdrawn.get_by_role("cell", name="ingetrokken").is_visible()
    assert page.get_by_role("button", name="MENTOR-2 intrekken").count() == 0
    assert page.get_by_role("button", name="MENTOR-1 intrekken").is_visible()
    page.screenshot(path="/tmp/intake-withdrawn.png", full_page=True)
