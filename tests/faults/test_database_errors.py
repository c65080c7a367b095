"""A failing database answers 503 with Retry-After on every door (issue 17).

The live fault tests (stopped PostgreSQL, full disk) show it under load; these pin the
format, fast: the API answers problem+json `database-unavailable`, the OAuth token
endpoint RFC 6749 `temporarily_unavailable`, a web page a 503 page — each with
`Retry-After`, never a 500 — and the next request after the database is back is served.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import IntegrityError, InternalError, OperationalError

from gateway.db import Database, database_unavailable
from tests.oauth.support import register_partner

FAILURES = {
    "connection refused": OperationalError(
        "SELECT 1", {}, Exception("connection failed: Connection refused")
    ),
    "disk full": OperationalError(
        "INSERT", {}, sqlite3.OperationalError("database or disk is full")
    ),
    "read only": OperationalError(
        "INSERT", {}, sqlite3.OperationalError("attempt to write a readonly database")
    ),
}


@pytest.fixture
def broken(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`broken(error)`: every new session of the app's database raises `error`."""
    db: Database = app.extensions["ketenpoort"].db

    def breaks(error: Exception) -> None:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise error

        monkeypatch.setattr(db, "session", fail)
        monkeypatch.setattr(db, "transaction", fail)
        monkeypatch.setattr(db, "ping", fail)

    return breaks


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_api_answers_503_problem_with_retry_after(
    client: FlaskClient, police: dict[str, str], broken: Any, failure: str, monkeypatch: Any
) -> None:
    broken(FAILURES[failure])
    response = client.get("/v1/directory", headers=police)
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("/problems/database-unavailable")
    assert body["status"] == 503
    assert int(response.headers["Retry-After"]) > 0
    monkeypatch.undo()  # the database is back: served again, by the same app
    assert client.get("/v1/directory", headers=police).status_code == 200


def test_readyz_is_red_with_retry_after(client: FlaskClient, broken: Any) -> None:
    broken(FAILURES["connection refused"])
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "database" in response.get_json()["detail"]


def test_token_endpoint_answers_temporarily_unavailable(
    app: Flask, client: FlaskClient, broken: Any
) -> None:
    partner = register_partner(app, "police")
    broken(FAILURES["connection refused"])
    response = partner.request_token(client, scope="directory:read")
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers["Retry-After"]


def test_web_page_answers_503_page(client: FlaskClient, broken: Any) -> None:
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form
    broken(FAILURES["disk full"])
    response = client.post(
        "/login",
        data={"csrf_token": token.group(1), "username": "x", "password": "y", "otp": "123456"},
    )
    assert response.status_code == 503, response.status_code
    assert response.mimetype == "text/html"
    assert response.headers["Retry-After"]
    # a form without its token is refused, and that refusal is audited: 503 as well
    refused = client.post("/login", data={"username": "x", "password": "y"})
    assert refused.status_code == 503 and refused.headers["Retry-After"]


class _ReadOnly(Exception):
    sqlstate = "25006"  # read_only_sql_transaction: psycopg calls it an InternalError


def test_only_database_failures_count_as_unavailable() -> None:
    assert all(database_unavailable(error) for error in FAILURES.values())
    assert database_unavailable(InternalError("INSERT", {}, _ReadOnly("read-only transaction")))
    assert not database_unavailable(IntegrityError("INSERT", {}, Exception("duplicate key")))
    wrapped = RuntimeError("while sequencing")
    wrapped.__cause__ = FAILURES["disk full"]
    assert database_unavailable(wrapped)
    assert not database_unavailable(ValueError("bad input"))
