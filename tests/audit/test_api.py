"""The audit API: checkpoint, key, proofs, entries, search, exports; each read is audited."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit import rfc9162
from gateway.audit.entries import ENTRY_SUBJECT_TYPE, entry_subject_id
from gateway.audit.models import AuditEntryRow
from gateway.audit.note import VerifierKey, key_hash, open_checkpoint
from gateway.audit.sequencer import CheckpointSigner
from gateway.db import Database
from tests.audit.conftest import CARE, POLICE, WARM_TOKENS, empty_the_log, write_events
from tests.test_http_conventions import assert_problem

Headers = Callable[..., dict[str, str]]
PSEUDONYM = "c2lnbmFsLXN1YmplY3QtcHNldWRvbnltLTAx"


@pytest.fixture
def logged(
    app: Flask, database: Database, sequence: Callable[..., int], token_headers: Headers
) -> list[bytes]:
    """Twelve sequenced entries: police 0-4 and 9-11, care 5-8 (one with a subject)."""
    for args in WARM_TOKENS:
        token_headers(*args)
    empty_the_log(database)  # after the app's start, registrations and tokens wrote theirs
    leaves = write_events(database, 5, POLICE)
    leaves += write_events(database, 3, CARE)
    leaves += write_events(database, 1, CARE, action="signal.read", subject=PSEUDONYM)
    leaves += write_events(database, 3, POLICE, action="signal.withdraw")
    sequence()
    return leaves


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def audit_reads(database: Database) -> list[dict[str, object]]:
    with database.session() as session:
        rows = session.execute(
            select(AuditEntryRow.data).where(
                AuditEntryRow.action.in_(["audit.read", "audit.export"])
            )
        ).scalars()
        return [json.loads(r) for r in rows]


def test_key_is_a_c2sp_verifier_key(
    client: FlaskClient, token_headers: Headers, signer: CheckpointSigner
) -> None:
    response = client.get("/v1/audit/key", headers=token_headers())
    assert response.status_code == 200 and response.mimetype == "text/plain"
    name, hash_hex, encoded = response.get_data(as_text=True).strip().split("+", 2)
    assert name == "127.0.0.1:8080/audit"
    raw = base64.b64decode(encoded)
    assert raw[0] == 0x01 and len(raw) == 33 and raw[1:] == signer.verifier_key.public_key
    assert bytes.fromhex(hash_hex) == key_hash(name, raw[1:])


def test_checkpoint_of_an_empty_log_is_signed(
    client: FlaskClient, token_headers: Headers, database: Database
) -> None:
    headers = token_headers()
    empty_the_log(database)  # the token's registration and issuance wrote entries
    key = VerifierKey.parse(client.get("/v1/audit/key", headers=headers).get_data(as_text=True))
    response = client.get("/v1/audit/checkpoint", headers=headers)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    checkpoint = open_checkpoint(response.get_data(as_text=True), [key], origin=key.name)
    assert checkpoint.size == 0 and checkpoint.root == rfc9162.EMPTY_ROOT


def test_checkpoint_and_proofs_need_a_token(client: FlaskClient, token_headers: Headers) -> None:
    token_headers()  # registers the validator
    for path in (
        "/v1/audit/checkpoint",
        "/v1/audit/key",
        "/v1/audit/proofs/consistency?first=1&second=1",
    ):
        assert_problem(client.get(path), 401, "invalid-token")


def test_inclusion_proof_by_index_and_by_receipt(
    client: FlaskClient, token_headers: Headers, logged: list[bytes], database: Database
) -> None:
    headers = token_headers("care")
    key = VerifierKey.parse(client.get("/v1/audit/key", headers=headers).get_data(as_text=True))
    checkpoint = open_checkpoint(
        client.get("/v1/audit/checkpoint", headers=headers).get_data(as_text=True), [key]
    )
    assert checkpoint.size == 12
    for index in (0, 5, 11):
        body = client.get(
            f"/v1/audit/proofs/inclusion?index={index}&treeSize=12", headers=headers
        ).get_json()
        assert body["index"] == index and body["treeSize"] == 12
        proof = [base64.b64decode(h) for h in body["hashes"]]
        rfc9162.verify_inclusion(index, 12, logged[index], proof, checkpoint.root)
    # a receipt's leaf hash, URL-encoded base64, base64url or with its '+' turned into a space
    for form in (b64(logged[7]), base64.urlsafe_b64encode(logged[7]).decode().rstrip("=")):
        response = client.get(
            "/v1/audit/proofs/inclusion",
            query_string={"leafHash": form, "treeSize": 12},
            headers=headers,
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["index"] == 7
    # treeSize defaults to the latest checkpoint
    assert (
        client.get("/v1/audit/proofs/inclusion?index=3", headers=headers).get_json()["treeSize"]
        > 12
    )
    assert any(e["resource"] == {"type": "audit-proof", "id": None} for e in audit_reads(database))


def test_proof_errors_are_problems(
    client: FlaskClient, token_headers: Headers, logged: list[bytes], database: Database
) -> None:
    h = token_headers()
    body = assert_problem(
        client.get("/v1/audit/proofs/inclusion?index=0&treeSize=13", headers=h),
        400,
        "tree-size-beyond-checkpoint",
    )
    assert body["errors"][0]["pointer"] == "/treeSize"
    assert_problem(
        client.get("/v1/audit/proofs/consistency?first=3&second=99", headers=h),
        400,
        "tree-size-beyond-checkpoint",
    )
    assert_problem(
        client.get("/v1/audit/proofs/consistency?first=5&second=3", headers=h), 400, "invalid-input"
    )
    assert_problem(
        client.get("/v1/audit/proofs/consistency?first=0&second=3", headers=h), 400, "invalid-input"
    )
    assert_problem(
        client.get("/v1/audit/proofs/consistency?first=x&second=3", headers=h), 400, "invalid-input"
    )
    assert_problem(
        client.get("/v1/audit/proofs/inclusion?index=12&treeSize=12", headers=h),
        400,
        "invalid-input",
    )
    assert_problem(
        client.get("/v1/audit/proofs/inclusion?treeSize=12", headers=h), 400, "invalid-input"
    )
    both = f"/v1/audit/proofs/inclusion?index=1&leafHash={b64(logged[1])}"
    assert_problem(client.get(both.replace("+", "%2B"), headers=h), 400, "invalid-input")
    assert_problem(
        client.get("/v1/audit/proofs/inclusion?leafHash=nope", headers=h), 400, "invalid-input"
    )
    unknown = base64.urlsafe_b64encode(bytes(32)).decode()
    assert_problem(
        client.get(f"/v1/audit/proofs/inclusion?leafHash={unknown}", headers=h),
        404,
        "leaf-not-found",
    )
    # read-your-writes: a fresh receipt is provable at once (the read catches the log up)
    fresh = write_events(database, 1)[0]
    response = client.get(
        "/v1/audit/proofs/inclusion", query_string={"leafHash": b64(fresh)}, headers=h
    )
    assert response.status_code == 200 and response.get_json()["index"] >= 12
    # a receipt in a later tree than the one asked for: not in that tree yet (a witness
    # that read an older checkpoint fetches a newer one), not an invalid request
    response = client.get(
        "/v1/audit/proofs/inclusion",
        query_string={"leafHash": b64(logged[11]), "treeSize": 5},
        headers=h,
    )
    assert_problem(response, 404, "leaf-not-sequenced")
    assert response.headers["Retry-After"] == "1"
    refused = [e for e in audit_reads(database) if e["outcome"] == "denied"]
    assert refused and all(e["actor"]["organisation"] == "police" for e in refused)  # type: ignore[index]


def test_consistency_proof(
    client: FlaskClient, token_headers: Headers, logged: list[bytes]
) -> None:
    h = token_headers()
    for first in (1, 4, 5, 12):
        body = client.get(
            f"/v1/audit/proofs/consistency?first={first}&second=12", headers=h
        ).get_json()
        assert body["first"] == first and body["second"] == 12
        proof = [base64.b64decode(x) for x in body["hashes"]]
        rfc9162.verify_consistency(
            first, 12, proof, rfc9162.root_of(logged[:first]), rfc9162.root_of(logged)
        )


def test_entries_for_the_privacy_officer_page_by_cursor(
    client: FlaskClient, token_headers: Headers, logged: list[bytes], database: Database
) -> None:
    h = token_headers("meldpunt", "audit:read cases:write")
    seen: list[int] = []
    url = "/v1/audit/entries?limit=5"
    calls = 0
    while True:
        body = client.get(url, headers=h).get_json()
        calls += 1
        for item in body["entries"]:
            data = base64.b64decode(item["data"])
            assert rfc9162.leaf_hash(data) == base64.b64decode(item["leafHash"])
            assert item["entry"] == json.loads(data)
            if item["index"] < 12:
                assert base64.b64decode(item["leafHash"]) == logged[item["index"]]
            seen.append(item["index"])
        if body["next"] is None:
            break
        url = f"/v1/audit/entries?limit=5&cursor={body['next']}"
    # the log's own reads are entries too: they show up as each read catches the log up
    assert seen == list(range(len(seen))) and len(seen) == 12 + calls - 1
    body = client.get("/v1/audit/entries?start=10&limit=2", headers=h).get_json()
    assert [e["index"] for e in body["entries"]] == [10, 11] and body["next"] is not None
    reads = [e for e in audit_reads(database) if e["resource"]["type"] == "audit-entries"]  # type: ignore[index]
    assert len(reads) == calls + 1
    assert all(e["actor"]["organisation"] == "meldpunt" for e in reads)  # type: ignore[index]


def test_entry_filters(client: FlaskClient, token_headers: Headers, logged: list[bytes]) -> None:
    h = token_headers("meldpunt", "audit:read")

    def indices(query: str) -> list[int]:
        response = client.get(f"/v1/audit/entries?{query}", headers=h)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [e["index"] for e in response.get_json()["entries"]]

    assert indices("actorOrganisation=care") == [5, 6, 7, 8]
    assert indices("actorId=police-bvh&action=signal.withdraw") == [9, 10, 11]
    assert indices("outcome=denied") == []
    assert indices("from=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z")[:12] == list(range(12))
    assert indices("until=2000-01-01T00:00:00Z") == []
    searched = client.post("/v1/audit/entries/_search", json={"subject": PSEUDONYM}, headers=h)
    assert [e["index"] for e in searched.get_json()["entries"]] == [8]
    assert_problem(client.get("/v1/audit/entries?outcome=maybe", headers=h), 400, "invalid-input")
    assert_problem(client.get("/v1/audit/entries?cursor=bm9wZQ", headers=h), 400, "invalid-cursor")
    assert_problem(
        client.get("/v1/audit/entries?cursor=aTE&start=1", headers=h), 400, "invalid-input"
    )
    assert_problem(client.get("/v1/audit/entries?limit=1001", headers=h), 400, "invalid-input")
    assert_problem(client.get("/v1/audit/entries?subject=x", headers=h), 400, "invalid-input")


def test_a_partner_sees_only_its_own_entries(
    client: FlaskClient, token_headers: Headers, logged: list[bytes]
) -> None:
    care = client.get("/v1/audit/entries", headers=token_headers("care")).get_json()
    assert [e["index"] for e in care["entries"]] == [5, 6, 7, 8]
    asked = client.get("/v1/audit/entries?actorOrganisation=police", headers=token_headers("care"))
    assert asked.get_json()["entries"] == []
    school = client.get("/v1/audit/entries", headers=token_headers("education")).get_json()
    assert school["entries"] == []


def test_search_by_subject_is_audited_with_the_subject(
    client: FlaskClient, token_headers: Headers, logged: list[bytes], database: Database
) -> None:
    h = token_headers("meldpunt", "audit:read")
    client.post("/v1/audit/entries/_search", json={"subject": PSEUDONYM, "limit": 10}, headers=h)
    (read,) = [e for e in audit_reads(database) if e["subjects"]]
    # The entry carries a reference made for it alone, which the search handle recomputes.
    assert read["subjects"] == [
        {"id": entry_subject_id(read["id"], PSEUDONYM), "type": ENTRY_SUBJECT_TYPE}
    ]
    assert PSEUDONYM not in json.dumps(read)
    assert PSEUDONYM not in json.dumps(read["detail"])


def test_exports(
    client: FlaskClient, token_headers: Headers, logged: list[bytes], database: Database
) -> None:
    h = token_headers("meldpunt", "audit:read")
    jsonl = client.get("/v1/audit/export?format=jsonl", headers=h)
    assert jsonl.status_code == 200 and jsonl.mimetype == "application/jsonl"
    lines = [json.loads(line) for line in jsonl.get_data(as_text=True).splitlines()]
    assert [x["index"] for x in lines] == list(range(12))
    assert all(base64.b64decode(x["leafHash"]) == logged[x["index"]] for x in lines)
    response = client.get("/v1/audit/export?format=csv&actorOrganisation=care", headers=h)
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["index"] for r in rows] == ["5", "6", "7", "8"]
    subject_id = entry_subject_id(lines[int(rows[3]["index"])]["entry"]["id"], PSEUDONYM)
    # a cell starting with = + - @ is guarded against spreadsheet formulas with a quote
    assert rows[3]["subjects"] in (subject_id, "'" + subject_id)
    assert rows[0]["actorOrganisation"] == "care"
    ldv = client.get("/v1/audit/export?format=ldv", headers=h).get_data(as_text=True)
    (record,) = [json.loads(line) for line in ldv.splitlines()]
    assert record["attributes"]["dpl.core.data_subject_id"] == subject_id
    assert "care" not in json.dumps(record) and "actor" not in json.dumps(record)
    exports = [e for e in audit_reads(database) if e["action"] == "audit.export"]
    assert len(exports) == 3
    assert_problem(client.get("/v1/audit/export?format=xml", headers=h), 400, "invalid-input")
    assert_problem(
        client.get("/v1/audit/export", headers={**h, "Accept": "application/json"}),
        406,
        "not-acceptable",
    )


def test_openapi_documents_the_audit_api(client: FlaskClient, app: Flask) -> None:
    paths = client.get("/v1/openapi.json").get_json()["paths"]
    for path in (
        "/audit/checkpoint",
        "/audit/key",
        "/audit/proofs/inclusion",
        "/audit/proofs/consistency",
        "/audit/entries",
        "/audit/entries/_search",
        "/audit/export",
    ):
        assert path in paths
    params = {p["name"] for p in paths["/audit/proofs/inclusion"]["get"]["parameters"]}
    assert params == {"index", "leafHash", "treeSize"}
