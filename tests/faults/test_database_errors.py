"""A failing database answers 503 with Retry-After on every door (issue 17).

The live fault tests (stopped PostgreSQL, full disk) show it under load; these pin the
format, fast: the API answers problem+json `database-unavailable`, the OAuth token
endpoint RFC 6749 `temporarily_unavailable`, a web page a 503 page — each with
`Retry-After`, never a 500 — and the next request after the database is back is served.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError, InternalError, OperationalError

from gateway.db import Database, database_unavailable
from tests.oauth.support import register_partner


def _sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    """An error as SQLite raises it: with its result code (Python 3.11+)."""
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


FAILURES = {
    "connection refused": OperationalError(
        "SELECT 1", {}, Exception("connection failed: Connection refused")
    ),
    "disk full": OperationalError("INSERT", {}, _sqlite_error("database or disk is full", 13)),
    "read only": OperationalError(
        "INSERT", {}, _sqlite_error("attempt to write a readonly database", 8)
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


def test_sqlite_bugs_stay_errors_and_its_failures_are_unavailable(tmp_path: Path) -> None:
    """A real SQLite: a missing table is a bug (500, logged), not a database to retry; a
    read-only database file is unavailable (503)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        with pytest.raises(OperationalError) as missing:
            connection.exec_driver_sql("SELECT * FROM no_such_table")
    assert not database_unavailable(missing.value)
    read_only = create_engine(f"sqlite:///file:{tmp_path / 'db.sqlite'}?mode=ro&uri=true")
    with read_only.begin() as connection, pytest.raises(OperationalError) as refused:
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert database_unavailable(refused.value)
