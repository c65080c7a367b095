"""The signals API end to end through the real stack: OAuth tokens, policy, pseudonyms,
envelopes, matching and audit, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.crypto.jwe import encrypt_for_recipients
from gateway.signals.models import SignalRow
from tests.conftest import MELDPUNT_SCOPES
from tests.test_http_conventions import assert_problem

BSN = "111222333"
OTHER_BSN = "123456782"
SUBJECT = {
    "bsn": BSN,
    "familyName": "van der Berg",
    "givenNames": "Sanne",
    "dateOfBirth": "2009-04-17",
}


def payload_for(client: FlaskClient, headers: dict[str, str], category: str) -> dict[str, Any]:
    """A JWE for every recipient the policy requires, built from directory and policy."""
    policy = client.get("/v1/policy", headers=headers).get_json()
    directory = client.get("/v1/directory", headers=headers).get_json()["organisations"]
    required = set(policy["categories"][category]["requiredRecipients"])
    keys = [k for org in directory if org["id"] in required for k in org["encryptionKeys"]["keys"]]
    return encrypt_for_recipients(b'{"summary": "zorgen over uitbuiting"}', keys)


def body(
    client: FlaskClient,
    headers: dict[str, str],
    reference: str = "BVH-2026-00123",
    category: str = "possible-victim",
    **subject: str,
) -> dict[str, Any]:
    return {
        "reference": reference,
        "category": category,
        "subject": {**SUBJECT, **subject},
        "payload": payload_for(client, headers, category),
    }


def test_create_returns_201_location_and_a_receipt_of_the_audit_entry(
    app: Flask, client: FlaskClient, police: dict[str, str]
) -> None:
    response = client.post("/v1/signals", json=body(client, police), headers=police)
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert response.headers["Location"].endswith(f"/v1/signals/{created['id']}")
    assert created["organisation"] == "police"
    assert created["category"] == "possible-victim"
    assert created["status"] == "active"
    assert {"bsn", "name_dob", "del_dob", "phon_dob"} <= set(created["linkageKeys"])
    leaf = base64.b64decode(created["receipt"]["leafHash"])
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        row = session.execute(
            select(AuditEntryRow).where(AuditEntryRow.leaf_hash == leaf)
        ).scalar_one()
    entry = json.loads(row.data)
    assert entry["action"] == "signal.create" and entry["resource"]["id"] == created["id"]
    assert entry["policy"]["rule"] == "partner-submits-signal"
    assert len(entry["subjects"]) == 2
    assert leaf == hashlib.sha256(b"\x00" + row.data).digest()
    for raw in (BSN, "Berg", "Sanne", "2009-04-17"):
        assert raw not in row.data.decode()


def test_two_partners_same_person_is_one_match_seen_by_the_meldpunt_only(
    client: FlaskClient, police: dict[str, str], care: dict[str, str], meldpunt: dict[str, str]
) -> None:
    a = client.post("/v1/signals", json=body(client, police), headers=police).get_json()
    b = client.post(
        "/v1/signals",
        json=body(client, care, "JH-77", "concern", bsn=BSN, familyName="Berg"),
        headers=care,
    ).get_json()
    matches = client.get("/v1/matches", headers=meldpunt).get_json()["items"]
    assert len(matches) == 1
    assert {s["id"] for s in matches[0]["signals"]} == {a["id"], b["id"]}
    assert {"bsn", "name_dob"} <= set(matches[0]["linkageKeys"])
    assert matches[0]["tier"] == "strong"
    assert matches[0]["state"] == "new"
    # the default policy tells no partner of a hit; the coordinator is told
    assert client.get("/v1/notifications", headers=care).get_json()["items"] == []
    assert client.get("/v1/notifications", headers=police).get_json()["items"] == []
    coordinator = client.get("/v1/notifications", headers=meldpunt).get_json()["items"]
    assert [n["type"] for n in coordinator] == ["match"]


def test_partners_cannot_list_matches(client: FlaskClient, police: dict[str, str]) -> None:
    # a partner cannot even be given cases:write (the registry refuses it)
    assert_problem(client.get("/v1/matches", headers=police), 403, "insufficient-scope")


def test_idempotent_retry_returns_the_first_response(
    app: Flask, client: FlaskClient, police: dict[str, str]
) -> None:
    signal = body(client, police)
    headers = {**police, "Idempotency-Key": "retry-0001"}
    first = client.post("/v1/signals", json=signal, headers=headers)
    second = client.post("/v1/signals", json=signal, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        assert len(session.execute(select(SignalRow)).scalars().all()) == 1
    other = client.post("/v1/signals", json={**signal, "reference": "X-2"}, headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")


@pytest.mark.parametrize(
    ("change", "pointer", "slug"),
    [
        ({"subject": {"bsn": "123456789"}}, "/subject/bsn", "invalid-subject"),
        ({"subject": {"dateOfBirth": "17-04-2009"}}, "/subject/dateOfBirth", "invalid-subject"),
        ({"subject": {}}, "/subject", "invalid-subject"),
        ({"category": "arbeidsconflict"}, "/category", "invalid-input"),
        ({"reference": "BSN 111222333"}, "/reference", "invalid-input"),
        ({"reference": "2009-04-17"}, "/reference", "invalid-input"),
        ({"reference": ""}, "/reference", "invalid-input"),
        ({"unexpected": True}, "/unexpected", "invalid-input"),
    ],
)
def test_invalid_input_is_400_naming_the_field(
    client: FlaskClient,
    police: dict[str, str],
    change: dict[str, Any],
    pointer: str,
    slug: str,
) -> None:
    signal = body(client, police)
    if "subject" in change:
        signal["subject"] = change["subject"]
    else:
        signal.update(change)
    response = client.post("/v1/signals", json=signal, headers=police)
    problem = assert_problem(response, 400, slug)
    assert pointer in {e["pointer"] for e in problem["errors"]}
    text = response.get_data(as_text=True)
    for raw in ("123456789", "111222333", "17-04-2009", "2009-04-17", "Berg"):
        assert raw not in text


def test_several_errors_are_listed_together(client: FlaskClient, police: dict[str, str]) -> None:
    signal = body(client, police, reference="111222333")
    signal["category"] = "unknown"
    signal["subject"] = {"bsn": "12"}
    problem = assert_problem(
        client.post("/v1/signals", json=signal, headers=police), 400, "invalid-input"
    )
    assert {"/reference", "/category", "/subject/bsn"} <= {e["pointer"] for e in problem["errors"]}


def test_broken_envelope_is_400_with_its_own_type(
    client: FlaskClient, police: dict[str, str]
) -> None:
    signal = body(client, police)
    signal["payload"]["ciphertext"] = signal["payload"]["ciphertext"][:-4] + "AAAA"
    assert_problem(
        client.post("/v1/signals", json=signal, headers=police), 400, "undecryptable-envelope"
    )
    signal = body(client, police)
    signal["payload"] = {"protected": "x"}
    assert_problem(
        client.post("/v1/signals", json=signal, headers=police), 400, "malformed-envelope"
    )


def test_payload_not_for_the_meldpunt_is_refused(
    client: FlaskClient, police: dict[str, str]
) -> None:
    directory = client.get("/v1/directory", headers=police).get_json()["organisations"]
    police_keys = [k for o in directory if o["id"] == "police" for k in o["encryptionKeys"]["keys"]]
    signal = body(client, police)
    signal["payload"] = encrypt_for_recipients(b"{}", police_keys)
    assert_problem(
        client.post("/v1/signals", json=signal, headers=police), 400, "missing-recipient"
    )


def test_education_may_not_report_a_possible_perpetrator(
    client: FlaskClient, token_headers: Any
) -> None:
    school = token_headers("education")
    signal = body(client, school, category="possible-perpetrator")
    assert_problem(client.post("/v1/signals", json=signal, headers=school), 403, "policy-denied")


def test_wrong_scope_is_403_and_no_token_is_401(client: FlaskClient, token_headers: Any) -> None:
    reader = token_headers("police", "signals:read directory:read")
    response = client.post("/v1/signals", json={}, headers=reader)
    assert_problem(response, 403, "insufficient-scope")
    assert_problem(client.post("/v1/signals", json={}), 401, "invalid-token")


def test_another_organisations_signal_is_404(
    client: FlaskClient, police: dict[str, str], care: dict[str, str]
) -> None:
    created = client.post("/v1/signals", json=body(client, police), headers=police).get_json()
    assert_problem(client.get(f"/v1/signals/{created['id']}", headers=care), 404, "not-found")
    assert_problem(client.delete(f"/v1/signals/{created['id']}", headers=care), 404, "not-found")
    assert client.get(f"/v1/signals/{created['id']}", headers=police).status_code == 200


def test_withdrawn_signal_never_matches_again(
    client: FlaskClient, police: dict[str, str], care: dict[str, str], meldpunt: dict[str, str]
) -> None:
    created = client.post("/v1/signals", json=body(client, police), headers=police).get_json()
    withdrawn = client.delete(f"/v1/signals/{created['id']}", headers=police)
    assert withdrawn.status_code == 200
    assert withdrawn.get_json()["status"] == "withdrawn"
    assert withdrawn.get_json()["receipt"]["leafHash"]
    client.post("/v1/signals", json=body(client, care, "JH-1", "concern"), headers=care)
    assert client.get("/v1/matches", headers=meldpunt).get_json()["items"] == []


def test_list_pages_through_own_signals(client: FlaskClient, police: dict[str, str]) -> None:
    ids = set()
    for n in range(5):
        signal = body(client, police, reference=f"BVH-{n}", bsn=OTHER_BSN if n % 2 else BSN)
        ids.add(client.post("/v1/signals", json=signal, headers=police).get_json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/signals?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=police).get_json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page.get("next")
        if not cursor:
            break
    assert set(seen) == ids and len(seen) == 5
    assert_problem(client.get("/v1/signals?limit=0", headers=police), 400, "invalid-input")


def test_schema_subject_category_and_envelope_errors_are_one_400(
    client: FlaskClient, police: dict[str, str]
) -> None:
    signal = body(client, police)
    signal["subject"] = {"bsn": "123456789", "dateOfBirth": "2004-13-02", "extra": "x"}
    signal["category"] = "nonsense"
    signal["payload"] = {"protected": "x"}
    response = client.post("/v1/signals", json=signal, headers=police)
    problem = assert_problem(response, 400, "invalid-input")
    pointers = {e["pointer"] for e in problem["errors"]}
    assert {"/subject/extra", "/category", "/subject/bsn", "/subject/dateOfBirth"} <= pointers
    assert any(p.startswith("/payload") for p in pointers), pointers
    assert len(pointers) == len(problem["errors"]), "one fault, one line"
    text = response.get_data(as_text=True)
    for raw in ("123456789", "2004-13-02"):
        assert raw not in text
    # without the unknown field the same errors are listed, the payload's among them
    del signal["subject"]["extra"]
    problem = assert_problem(
        client.post("/v1/signals", json=signal, headers=police), 400, "invalid-input"
    )
    assert {"/category", "/subject/bsn", "/subject/dateOfBirth", "/payload/iv"} <= {
        e["pointer"] for e in problem["errors"]
    }


def _for_meldpunt_and_police(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    directory = client.get("/v1/directory", headers=headers).get_json()["organisations"]
    keys = [
        k
        for org in directory
        if org["id"] in ("meldpunt", "police")
        for k in org["encryptionKeys"]["keys"]
    ]
    return encrypt_for_recipients(b'{"summary": "zorgen"}', keys)


def test_invalid_subject_and_broken_envelope_are_listed_together(
    client: FlaskClient, police: dict[str, str]
) -> None:
    signal = body(client, police, bsn="123456789")
    signal["payload"] = _for_meldpunt_and_police(client, police)
    signal["payload"]["iv"] = "AAAA"  # 3 bytes, not 12
    signal["payload"]["recipients"][1]["header"]["kid"] = "retired"
    response = client.post("/v1/signals", json=signal, headers=police)
    problem = assert_problem(response, 400, "invalid-input")
    assert {e["pointer"] for e in problem["errors"]} == {
        "/subject/bsn",
        "/payload/iv",
        "/payload/recipients/1/header/kid",
    }
    assert "123456789" not in response.get_data(as_text=True)


def test_errors_of_one_kind_keep_their_type(client: FlaskClient, police: dict[str, str]) -> None:
    signal = body(client, police, bsn="123456789", dateOfBirth="2004-13-02")
    problem = assert_problem(
        client.post("/v1/signals", json=signal, headers=police), 400, "invalid-subject"
    )
    assert {e["pointer"] for e in problem["errors"]} == {"/subject/bsn", "/subject/dateOfBirth"}
    signal = body(client, police)
    signal["payload"] = _for_meldpunt_and_police(client, police)
    for index in (0, 1):
        signal["payload"]["recipients"][index]["header"]["kid"] = f"retired-{index}"
    problem = assert_problem(
        client.post("/v1/signals", json=signal, headers=police), 400, "unknown-recipient-key"
    )
    assert len(problem["errors"]) == 2


def test_a_payload_is_decrypted_only_when_all_else_is_valid(
    client: FlaskClient, police: dict[str, str]
) -> None:
    """Decryption is the one costly check: an otherwise invalid signal is refused
    without it, so a tampered ciphertext shows once the rest is fixed."""
    signal = body(client, police, bsn="123456789")
    signal["payload"]["tag"] = signal["payload"]["tag"][:-4] + "AAAA"
    problem = assert_problem(
        client.post("/v1/signals", json=signal, headers=police), 400, "invalid-subject"
    )
    assert [e["pointer"] for e in problem["errors"]] == ["/subject/bsn"]
    signal["subject"]["bsn"] = BSN
    assert_problem(
        client.post("/v1/signals", json=signal, headers=police), 400, "undecryptable-envelope"
    )


def test_input_errors_are_answered_before_the_policy_refuses(
    client: FlaskClient, token_headers: Any
) -> None:
    school = token_headers("education")
    signal = body(client, school, category="possible-perpetrator", bsn="123456789")
    signal["payload"]["iv"] = "AAAA"
    problem = assert_problem(
        client.post("/v1/signals", json=signal, headers=school), 400, "invalid-input"
    )
    assert {"/subject/bsn", "/payload/iv"} <= {e["pointer"] for e in problem["errors"]}


def test_list_reports_a_bad_cursor_with_the_other_query_errors(
    client: FlaskClient, police: dict[str, str]
) -> None:
    response = client.get("/v1/signals?limit=abc&cursor=garbage&x=1", headers=police)
    problem = assert_problem(response, 400, "invalid-input")
    assert {(e["pointer"], e["parameter"]) for e in problem["errors"]} == {
        ("/limit", "limit"),
        ("/cursor", "cursor"),
        ("/x", "x"),
    }
    alone = assert_problem(
        client.get("/v1/signals?cursor=garbage", headers=police), 400, "invalid-cursor"
    )
    assert alone["errors"] == [
        {"pointer": "/cursor", "detail": "Not a cursor this API issued", "parameter": "cursor"}
    ]


def test_every_list_reports_a_bad_cursor_with_the_other_query_errors(
    client: FlaskClient, police: dict[str, str], token_headers: Any
) -> None:
    meldpunt = token_headers("meldpunt", MELDPUNT_SCOPES)
    care = token_headers("care", "shares:read")
    for path, cursor, headers in (
        ("/v1/notifications", "after", police),
        ("/v1/shares", "cursor", care),
        ("/v1/matches", "cursor", meldpunt),
        ("/v1/cases", "cursor", meldpunt),
    ):
        response = client.get(f"{path}?limit=abc&{cursor}=garbage", headers=headers)
        problem = assert_problem(response, 400, "invalid-input")
        assert {e["pointer"] for e in problem["errors"]} == {"/limit", f"/{cursor}"}, path
