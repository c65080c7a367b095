"""Fixtures: every database test runs on SQLite and, when configured, on PostgreSQL.

`KETENPOORT_TEST_POSTGRES_URL` (CI sets it; `make test` sets it when PostgreSQL answers
on 127.0.0.1:5432) adds a PostgreSQL run of every test that uses `database_url`; each
test gets its own schema, dropped afterwards. Without the variable those runs show as
skipped, with the reason, so the count says they did not run; when it is set and the
server is unreachable, the tests fail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from gateway.api.paging import CursorCodec
from gateway.app import create_app
from gateway.bootstrap import initialise
from gateway.config import Settings
from gateway.jobs import JobThread
from gateway.services import close_app

if TYPE_CHECKING:
    from tests.matches_support import MatchDesk

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("KETENPOORT_TEST_POSTGRES_URL", "")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not POSTGRES_URL, reason="KETENPOORT_TEST_POSTGRES_URL is not set (no PostgreSQL run)"
        ),
    ),
]
#: Paging cursors of the services' list functions called directly in tests.
TEST_CURSORS = CursorCodec(bytes(32), "test")
TEST_ISSUER = "http://127.0.0.1:8080"
#: What the meldpunt's own systems may do (matches, the whole audit log, its notifications).
MELDPUNT_SCOPES = "cases:write audit:read notifications:read directory:read signals:read"


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def running_jobs() -> set[JobThread]:
    """The background-job threads alive in this process."""
    return {thread for thread in threading.enumerate() if isinstance(thread, JobThread)}


def _assert_no_new_jobs(before: set[JobThread], where: str) -> None:
    left = running_jobs() - before
    assert not left, (
        f"background jobs {sorted(t.name for t in left)} outlived their {where}: close every "
        "app you create with gateway.services.close_app (its jobs would run on against a "
        "dropped schema or a closed log stream)"
    )


@pytest.fixture(autouse=True, scope="module")
def _no_job_outlives_its_module() -> Iterator[None]:
    """Module-scoped apps (a live gateway's set-up) stop their jobs too."""
    before = running_jobs()
    yield
    _assert_no_new_jobs(before, "test module")


@pytest.fixture(autouse=True)
def _no_job_outlives_its_test() -> Iterator[None]:
    before = running_jobs()
    yield
    _assert_no_new_jobs(before, "test")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ketenpoort.db'}"
        return
    with postgres_schema("t") as url:
        yield url


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A PostgreSQL schema of its own, dropped afterwards: the URL that works in it."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_search_path(POSTGRES_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        keys_dir=tmp_path / "keys",
        policy=ROOT / "policies" / "twente.yaml",
        issuer=TEST_ISSUER,
        master_key=secrets.token_bytes(32),
        log_format="json",
        testing=True,
        background_jobs=False,
    )


@pytest.fixture
def initialised(settings: Settings) -> dict[str, Any]:
    return initialise(settings)


@pytest.fixture
def app(settings: Settings, initialised: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(settings=settings)
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# -- OAuth: real partner clients and real access tokens (tests/oauth/support.py) --------


@pytest.fixture
def partner_client(app: Flask) -> Any:
    """A registered police client (ES256 key) that builds its own assertions and proofs."""
    from tests.oauth.support import register_partner

    return register_partner(app, "police")


@pytest.fixture
def token_headers(app: Flask, client: FlaskClient) -> Any:
    """`token_headers(org, scopes, *, kind=None, dpop=False)` → `{"Authorization": …}`.

    Registers the organisation if new (kind: the org id when it is a valid kind, else
    "care") and a client with `scopes`, and gets a real access token from /oauth/token
    with a private_key_jwt assertion. With `dpop=True` the token is DPoP-bound and the
    returned dict's `.for_request(method, path)` adds a fresh DPoP proof.
    """
    from tests.oauth.support import DEFAULT_SCOPES, TokenHeaders, register_partner

    def get(
        org: str = "police",
        scopes: str = DEFAULT_SCOPES,
        *,
        kind: str | None = None,
        dpop: bool = False,
    ) -> dict[str, str]:
        partner = register_partner(app, org, scopes, kind=kind)
        response = partner.request_token(client, scope=scopes, dpop=dpop)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        return TokenHeaders(partner, body["access_token"], body["token_type"])

    return get


# -- partner systems with real tokens, for the API tests --------------------------------


@pytest.fixture
def police(token_headers: Any) -> dict[str, str]:
    headers: dict[str, str] = token_headers("police")
    return headers


@pytest.fixture
def care(token_headers: Any) -> dict[str, str]:
    headers: dict[str, str] = token_headers("care")
    return headers


@pytest.fixture
def meldpunt(token_headers: Any) -> dict[str, str]:
    headers: dict[str, str] = token_headers("meldpunt", MELDPUNT_SCOPES)
    return headers


@pytest.fixture
def desk(
    client: FlaskClient, police: dict[str, str], care: dict[str, str], meldpunt: dict[str, str]
) -> MatchDesk:
    """Two reporting partners and the report desk: a match with two signals in one call."""
    from tests.matches_support import MatchDesk  # (imports a test module: not at collection)

    return MatchDesk(client, police, care, meldpunt)
