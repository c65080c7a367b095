"""The privacy officer in a real browser (Debian's Chromium), on both databases: she
finds every access to one demo person through the POST form, exports it and verifies
the log — and the person's identifiers appear in no URL, log line or audit entry."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from gateway.app import create_app
from gateway.demo.people import Person, people
from gateway.services import close_app
from tests.oauth.support import register_partner
from tests.signals.test_api import payload_for
from tests.web.flows import find_person_in_audit_log, sign_in, verify_the_log
from tests.web.live import WebGateway


def _submit(live: WebGateway, reports: list[tuple[str, Person, str]]) -> list[str]:
    """Signals submitted through the API of an in-process app on the same database."""
    app = create_app(settings=replace(live.settings, background_jobs=False))
    try:
        client = app.test_client()
        ids = []
        for org, person, reference in reports:
            partner = register_partner(app, org)
            token = partner.request_token(client).get_json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            body = {
                "reference": reference,
                "category": "possible-victim",
                "subject": person.subject(),
                "payload": payload_for(client, headers, "possible-victim"),
            }
            created = client.post("/v1/signals", json=body, headers=headers)
            assert created.status_code == 201, created.get_data(as_text=True)
            ids.append(created.get_json()["id"])
        return ids
    finally:
        close_app(app)


@pytest.fixture(scope="module")
def reported(live: WebGateway) -> Iterator[dict[str, Any]]:
    someone, other = people(2, seed=13)
    ids = _submit(
        live,
        [("police", someone, "BVH-1"), ("care", someone, "ZRG-1"), ("police", other, "BVH-2")],
    )
    yield {"person": someone, "ids": ids[:2], "other": ids[2]}


def test_the_officer_finds_every_access_to_one_person_exports_it_and_verifies(
    page: Any, live: WebGateway, reported: dict[str, Any]
) -> None:
    person: Person = reported["person"]
    identifiers = [person.bsn, person.family_name, person.given_names, person.date_of_birth]
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    officer = live.person("privacy-officer")
    sign_in(page, officer)
    page.wait_for_url(re.compile(r"/$"))
    page.get_by_role("navigation", name="Hoofdmenu").get_by_role("link", name="Auditlog").click()
    page.wait_for_url("**/audit")
    assert page.get_by_role("heading", level=1).inner_text() == "Auditlog"

    find_person_in_audit_log(page, person.subject())
    assert "2 subjectverwijzingen" in page.get_by_role("status").first.inner_text()
    table = page.get_by_role("table").inner_text()
    for signal_id in reported["ids"]:
        assert signal_id in table  # both partners' signals about the person
    assert reported["other"] not in table
    # the search itself is an access, and shown once the sequencer has given it its
    # index (on PostgreSQL a background job, a moment after the request)
    for _ in range(40):
        if "subject.search" in table:
            break
        page.wait_for_timeout(250)
        page.reload()
        table = page.get_by_role("table").inner_text()
    assert "subject.search" in table

    # one entry with its proof
    page.get_by_role("table").get_by_role("link").last.click()
    page.wait_for_url(re.compile(r"/audit/\d+$"))
    assert "Geverifieerd tegen het controlepunt van boomgrootte" in page.inner_text("main")
    page.get_by_role("link", name="Terug naar het auditlog").click()

    # the export of the filtered view (the person filter stays on the server)
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    path = download.value.path()
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    exported = {row["resourceId"] for row in rows}
    assert set(reported["ids"]) <= exported and reported["other"] not in exported

    # verification from the page
    text = verify_the_log(page)
    assert "De laatste controle vond het log intact" in text
    assert "handtekening geldig" in text

    # the identifiers went by POST only: in no URL, no log line, no audit entry
    for value in identifiers:
        assert all(value not in url for url in urls), value
        assert value not in live.log(), value
    entries = json.dumps(live.audit())
    for value in identifiers:
        assert value not in entries, value
    mine = [(e["action"], e["outcome"]) for e in live.audit(officer.name)]
    assert ("subject.search", "success") in mine and ("audit.export", "success") in mine
