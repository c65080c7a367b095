"""Weakness 1 and 3 of the outside attack: the matching oracle.

A partner submits a person another partner already reported, and a person nobody
reported; then reads back everything it may read — the responses, its signals, its
notifications, its own audit entries — and withdraws both. Apart from ids, times and
hashes, the two sides must be identical: the partner cannot tell a hit from a miss,
and it never sees a pseudonym.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from flask.testing import FlaskClient

from gateway.matching.processor import process_outbox
from gateway.signals.service import pseudonym_ref
from tests.signals.test_api import body

#: Values that differ between any two requests (ids, times, hashes, trace context).
VOLATILE = {
    "id",
    "signalId",
    "createdAt",
    "expiresAt",
    "leafHash",
    "data",
    "index",
    "time",
    "requestId",
    "reference",
    "trace_id",
    "span_id",
    "parent_span_id",
    "start_time",
    "end_time",
    "next",
    "organisation",  # two police systems tell their stories (see the test)
}
VOLATILE_HEADERS = {"Location", "X-Request-Id", "traceparent", "Content-Length", "Date"}

REPORTED = {"bsn": "111222333", "familyName": "Jansen", "dateOfBirth": "2008-02-03"}
FRESH = {"bsn": "123456782", "familyName": "Bakker", "dateOfBirth": "2007-11-21"}


def blank(value: Any) -> Any:
    """`value` with every volatile field replaced by its type's name."""
    if isinstance(value, dict):
        return {
            k: (type(v).__name__ if k in VOLATILE else blank(v)) for k, v in sorted(value.items())
        }
    if isinstance(value, list):
        return [blank(v) for v in value]
    return value


def view(response: Any) -> dict[str, Any]:
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE_HEADERS}
    return {"status": response.status_code, "headers": headers, "body": blank(response.get_json())}


def own_entries(client: FlaskClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    page = client.get("/v1/audit/entries?limit=1000", headers=headers).get_json()
    entries: list[dict[str, Any]] = page["entries"]
    return entries


def partner_story(
    client: FlaskClient, police: dict[str, str], subject: dict[str, str], reference: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Everything police can observe of submitting and withdrawing `subject`."""
    seen = {e["index"] for e in own_entries(client, police)}
    organisation = own_entries(client, police)[-1]["entry"]["actor"]["organisation"]
    observed: list[dict[str, Any]] = []
    created = client.post(
        "/v1/signals",
        json=body(client, police, reference, "possible-victim", givenNames="Eva", **subject),
        headers=police,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    signal_id = created.get_json()["id"]
    observed.append(view(created))
    # The background job matches the signal between the partner's requests.
    process_outbox(client.application.extensions["ketenpoort"].db)
    observed.append(view(client.get(f"/v1/signals/{signal_id}", headers=police)))
    observed.append(view(client.get("/v1/notifications", headers=police)))
    observed.append(view(client.delete(f"/v1/signals/{signal_id}", headers=police)))
    observed.append(view(client.get("/v1/notifications", headers=police)))
    entries = [e["entry"] for e in own_entries(client, police) if e["index"] not in seen]
    for entry in entries:  # the reads of the log count the entries read so far
        if entry["action"] == "audit.read":
            entry["detail"] = {k: v for k, v in entry["detail"].items() if k == "filters"}
    assert entries and all(e["actor"]["organisation"] == organisation for e in entries)
    for entry in entries:  # which police system it was is not what is compared
        entry["actor"]["organisation"] = "police"
    return observed, [blank(e) for e in entries]


def test_a_partner_cannot_tell_a_reported_person_from_a_fresh_one(
    client: FlaskClient,
    police: dict[str, str],
    care: dict[str, str],
    meldpunt: dict[str, str],
    token_headers: Any,
) -> None:
    reported = client.post(
        "/v1/signals",
        json=body(client, care, "JZ-1", "possible-victim", givenNames="Eva", **REPORTED),
        headers=care,
    )
    assert reported.status_code == 201

    # Two police systems, one story each: identical reads by one actor within a minute
    # are summarised in the log, which would tell the second story from the first.
    police_b = token_headers("police-b", kind="police")
    hit, hit_entries = partner_story(client, police, REPORTED, "BVH-1")
    miss, miss_entries = partner_story(client, police_b, FRESH, "BVH-2")

    # The gateway did find the match: the coordinator sees it.
    assert len(client.get("/v1/matches", headers=meldpunt).get_json()["items"]) == 1
    assert hit == miss
    assert hit_entries == miss_entries


def test_partner_visible_entries_carry_no_pseudonym(
    app: Any, client: FlaskClient, police: dict[str, str], care: dict[str, str]
) -> None:
    for headers, reference in ((care, "JZ-9"), (police, "BVH-9")):
        created = client.post(
            "/v1/signals",
            json=body(client, headers, reference, "possible-victim", **REPORTED),
            headers=headers,
        )
        assert created.status_code == 201
    pseudonymiser = app.extensions["ketenpoort"].keys
    from gateway.pseudonyms.service import Pseudonymiser

    elements = Pseudonymiser.from_key_store(pseudonymiser).pseudonyms(
        {**REPORTED, "givenNames": "Sanne"}
    )
    refs = {pseudonym_ref(e) for e in elements.values()}
    entries = own_entries(client, police)
    text = json.dumps(entries) + "".join(base64.b64decode(e["data"]).decode() for e in entries)
    for ref in refs:
        assert ref not in text
    for entry in entries:
        assert "matches" not in entry["entry"]["detail"]
        assert "repeatOf" not in entry["entry"]["detail"]
