"""Live gateways for the partner client tests (on ports the OS hands out) and partners
whose keys sit in files, as `ketenpoort partner keys init` leaves them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.client import PartnerClient
from gateway.client.cli import generate_partner_keys
from tests.client.proxy import FaultyProxy, faulty_proxy
from tests.integration.live import LiveGateway, live_gateway, register_in_database
from tests.oauth.support import DEFAULT_SCOPES

# the case system: no `audit:read` (the policy separates it from `cases:write`)
MELDPUNT_SCOPES = "cases:write notifications:read directory:read signals:read"


@pytest.fixture(scope="session")
def shared_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """One gunicorn gateway on SQLite for the tests that leave its log intact."""
    tmp = tmp_path_factory.mktemp("shared-gateway")
    with live_gateway(f"sqlite:///{tmp / 'ketenpoort.db'}", tmp) as live:
        yield live


@pytest.fixture
def own_gateway(database_url: str, tmp_path: Path) -> Iterator[LiveGateway]:
    """A gateway of this test alone (its log gets rewritten), on every test backend."""
    with live_gateway(database_url, tmp_path) as live:
        yield live


@pytest.fixture
def proxy() -> Iterator[FaultyProxy]:
    with faulty_proxy() as running:
        yield running


def via(proxy: FaultyProxy) -> requests.Session:
    """A session that sends every request through `proxy` (and ignores *_PROXY vars)."""
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"http": proxy.url}
    return session


@dataclass
class Enrolled:
    """A registered partner client whose keys are files in `folder`."""

    issuer: str
    org: str
    client_id: str
    folder: Path
    public_jwks: dict[str, Any] = field(repr=False)

    def client(self, **options: Any) -> PartnerClient:
        return PartnerClient(
            self.issuer,
            self.client_id,
            signing_key=self.folder / "signing.jwk.json",
            encryption_key=self.folder / "encryption.jwk.json",
            **options,
        )

    def write_config(self, path: Path, state: Path) -> Path:
        """The `ketenpoort partner --config` file for this client (its key files and
        witness `state`), as a partner's deployment writes it; returns `path`."""
        config = {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "signing_key": str(self.folder / "signing.jwk.json"),
            "encryption_key": str(self.folder / "encryption.jwk.json"),
            "state": str(state),
        }
        path.write_text(json.dumps(config))
        return path

    @property
    def encryption_public(self) -> dict[str, Any]:
        key: dict[str, Any] = next(k for k in self.public_jwks["keys"] if k["use"] == "enc")
        return key


def enrol(gateway: LiveGateway, kind: str, folder: Path, scopes: str = DEFAULT_SCOPES) -> Enrolled:
    """Register a new organisation of `kind` (the meldpunt's own when kind is meldpunt)
    and a client, with keys made as a partner makes them."""
    tag = uuid.uuid4().hex[:8]
    org = "meldpunt" if kind == "meldpunt" else f"{kind}-{tag}"
    folder = folder / f"{kind}-{tag}"
    paths = generate_partner_keys(folder)
    public = json.loads(paths["public"].read_text())
    client_id = register_in_database(
        gateway.settings.database_url,
        org,
        kind,
        encryption_keys=[k for k in public["keys"] if k["use"] == "enc"],
        signing_keys=[k for k in public["keys"] if k["use"] == "sig"],
        scopes=scopes,
        name=org,
    )
    return Enrolled(gateway.issuer, org, client_id, folder, public)


class FakeClock:
    """The client's clock, moved by the test; starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def sleeps() -> list[float]:
    """Pass `sleeps.append` as the client's `sleep`: it records instead of waiting."""
    return []
