"""Weakness 7: every parser failure is a 400 with an audit entry; a 500 leaves one too.

The outside attack got 500s without an audit entry from deeply nested JSON, integers of
more than 4,300 digits (Python's int-parsing limit raises ValueError) and out-of-range
audit `start`/cursor values. Every JSON body endpoint (found in the OpenAPI document)
gets each hostile body; each answer must be a 400 problem and leave exactly one entry
with outcome `denied` naming the caller.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from gateway.api.validation import MAX_DEPTH, decode_json
from gateway.audit import AuditEvent
from gateway.audit.access import AuditService
from gateway.audit.models import AuditEntryRow
from gateway.audit.service import insert_entry
from gateway.errors import InvalidInput
from gateway.services import db_session
from tests.conftest import MELDPUNT_SCOPES
from tests.test_http_conventions import assert_problem

HOSTILE_BODIES = {
    "nested-100000": b"[" * 100_000,
    "nested-objects": b'{"a":' * 50_000,
    "nested-just-too-deep": b'{"reference":' + b"[" * 40 + b"]" * 40 + b"}",
    "int-4301-digits": b'{"limit": ' + b"9" * 4301 + b"}",
    "int-100000-digits": b'{"reference": -' + b"1" * 100_000 + b"}",
    "nan": b'{"limit": NaN}',
    "infinity": b'{"limit": -Infinity}',
    "float-overflow": b'{"limit": 1e999999}',
}


def entries(app: Flask, **where: str) -> list[dict[str, Any]]:
    db = app.extensions["ketenpoort"].db
    with db.session() as session:
        stmt = select(AuditEntryRow.data)
        for name, value in where.items():
            stmt = stmt.where(getattr(AuditEntryRow, name) == value)
        return [json.loads(d) for d in session.execute(stmt).scalars()]


def count(app: Flask) -> int:
    with app.extensions["ketenpoort"].db.session() as session:
        return int(session.execute(select(func.count(AuditEntryRow.id))).scalar_one())


def json_endpoints(client: FlaskClient) -> list[tuple[str, str]]:
    document = client.get("/v1/openapi.json").get_json()
    found = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            if "{" in path:
                continue
            if "application/json" in op.get("requestBody", {}).get("content", {}):
                found.append((method.upper(), "/v1" + path))
    return found


@pytest.fixture
def headers(token_headers: Any) -> dict[str, str]:
    """A meldpunt system with every scope a JSON body endpoint needs."""
    found: dict[str, str] = token_headers("meldpunt", MELDPUNT_SCOPES + " signals:write")
    return found


def test_every_json_endpoint_refuses_hostile_bodies_with_an_audited_400(
    app: Flask, client: FlaskClient, headers: dict[str, str]
) -> None:
    endpoints = json_endpoints(client)
    assert ("POST", "/v1/signals") in endpoints
    assert ("POST", "/v1/audit/entries/_search") in endpoints
    for method, path in endpoints:
        for name, raw in HOSTILE_BODIES.items():
            before = count(app)
            response = client.open(
                path,
                method=method,
                data=raw,
                headers={**headers, "Content-Type": "application/json"},
            )
            assert response.status_code == 400, (path, name, response.get_data()[:300])
            body = assert_problem(response, 400, "invalid-input")
            # the input is never echoed; runs longer than a random request id can hold
            assert "9" * 12 not in json.dumps(body) and "1" * 12 not in json.dumps(body)
            assert count(app) == before + 1, (path, name)
    refused = entries(app, action="request.refuse")
    assert len(refused) == len(endpoints) * len(HOSTILE_BODIES)
    for entry in refused:
        assert entry["outcome"] == "denied" and entry["ldv"]["status"] == "Unset"
        assert entry["actor"]["organisation"] == "meldpunt"
        assert entry["detail"]["problem"] == "invalid-input" and entry["detail"]["status"] == 400
        assert entry["resource"]["type"] == "endpoint"


def test_out_of_range_audit_start_and_cursor_are_audited_400s(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    h = token_headers("meldpunt", "audit:read")
    for query in (
        "start=" + "9" * 24,
        "start=-1",
        "start=" + "9" * 4301,
        "cursor=" + "A" * 5000,
        "cursor=aTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ",  # "i" and 24 digits: the old format
        "cursor=azE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5",  # "k1:" and 22 digits
    ):
        before = count(app)
        response = client.get(f"/v1/audit/entries?{query}", headers=h)
        assert response.status_code == 400, (query, response.get_data()[:300])
        assert count(app) == before + 1, query


def test_an_internal_error_is_a_500_with_an_error_entry_in_a_fresh_session(
    app: Flask, client: FlaskClient, token_headers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = token_headers("meldpunt", "audit:read")

    def broken(self: AuditService, actor: Any, *args: Any, **kwargs: Any) -> Any:
        # Work in the request's session, then fail: that work must roll back, and the
        # error entry must still be written. (A read's own audit entry is written apart,
        # by design; this is other work in the request's transaction.)
        insert_entry(
            db_session(),
            AuditEvent(action="half.done", outcome="success", actor=actor),
            datetime.now(UTC),
        )
        raise RuntimeError("boom")

    monkeypatch.setattr(AuditService, "entries", broken)
    response = client.get("/v1/audit/entries", headers=h)
    body = assert_problem(response, 500, "internal-error")
    assert "boom" not in json.dumps(body)
    assert entries(app, action="half.done") == []
    (failed,) = entries(app, action="request.fail")
    assert failed["outcome"] == "error" and failed["ldv"]["status"] == "Error"
    assert failed["detail"] == {
        "method": "GET",
        "status": 500,
        "problem": "internal-error",
        "exception": "RuntimeError",
    }
    assert failed["resource"] == {"type": "endpoint", "id": "/v1/audit/entries"}
    assert failed["requestId"] == response.headers["X-Request-Id"]


def test_a_refusal_already_audited_is_not_audited_twice(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    h = token_headers("meldpunt", "audit:read")
    before = count(app)
    response = client.get("/v1/audit/proofs/consistency?first=1&second=999999", headers=h)
    assert_problem(response, 400, "tree-size-beyond-checkpoint")
    # the read's own entry (audit.read, denied) and nothing else
    assert count(app) == before + 1
    assert entries(app, action="request.refuse") == []


@given(st.binary(max_size=512))
def test_any_bytes_decode_or_are_a_400(raw: bytes) -> None:
    try:
        decode_json(raw)
    except InvalidInput as error:
        assert error.status == 400


@given(st.integers(min_value=1, max_value=3 * MAX_DEPTH), st.sampled_from(["[", '{"a":']))
def test_nesting_is_bounded(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = (opener * depth + "0" + closer * depth).encode()
    if depth <= MAX_DEPTH:
        assert decode_json(raw) is not None
    else:
        with pytest.raises(InvalidInput):
            decode_json(raw)


@given(st.integers())
def test_integers_within_64_digits_round_trip(value: int) -> None:
    text = str(value).encode()
    if len(str(abs(value))) <= 64:
        assert decode_json(text) == value
    else:
        with pytest.raises(InvalidInput):
            decode_json(text)
