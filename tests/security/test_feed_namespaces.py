"""Weakness 6 of the outside attack: organisations and role feeds shared one namespace.

An organisation registered with the id `coordinator` read the coordinator's notification
feed. Role feeds are now `role:<name>`, a form no organisation id can take, and the
names of roles, the gateway and the meldpunt's own staff are refused as organisation ids.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.actors import Actor
from gateway.matching.models import COORDINATOR
from gateway.partners.models import Organisation
from gateway.partners.registry import RESERVED_IDS, RegistryError, add_organisation
from tests.oauth.support import enc_key, new_key, public_of
from tests.oauth.test_registry_cli import cli_env, run, write_jwks
from tests.signals.test_api import body

__all__ = ["cli_env"]
ADMIN = Actor(type="user", id="cli:test", role="admin")


def test_the_role_feed_is_outside_the_organisation_id_space() -> None:
    assert COORDINATOR.startswith("role:")


@pytest.mark.parametrize(
    "org_id",
    ["coordinator", "gateway", "system", "ketenpoort", "privacy-officer", "meldpunt-internal"],
)
def test_reserved_ids_are_refused_by_partners_add(
    cli_env: dict[str, str], tmp_path: Path, org_id: str
) -> None:
    assert org_id in RESERVED_IDS
    jwks = write_jwks(tmp_path, [public_of(new_key()), enc_key()[1]])
    result = run(
        cli_env, "partners", "add", org_id, "--name", "X", "--kind", "care", "--jwks", jwks
    )
    assert result.exit_code != 0 and "reserved" in result.stderr


def test_the_registry_refuses_every_reserved_id(app: Flask) -> None:
    with app.extensions["ketenpoort"].db.transaction() as session:
        for org_id in sorted(RESERVED_IDS):
            with pytest.raises(RegistryError, match="reserved"):
                add_organisation(
                    session,
                    org_id=org_id,
                    name="X",
                    kind="care",
                    encryption_keys=[enc_key()[1]],
                    actor=ADMIN,
                )


def test_an_organisation_called_coordinator_does_not_read_the_coordinators_feed(
    app: Flask,
    client: FlaskClient,
    police: dict[str, str],
    care: dict[str, str],
    meldpunt: dict[str, str],
    token_headers: Any,
) -> None:
    """Even one that predates the check (put straight into the table) reads only its own."""
    with app.extensions["ketenpoort"].db.transaction() as session:
        session.add(
            Organisation(
                id="coordinator",
                name="Coordinator",
                kind="care",
                encryption_jwks={"keys": [enc_key()[1]]},
                status="active",
                created_at=int(time.time()),
            )
        )
    impostor = token_headers("coordinator")
    client.post("/v1/signals", json=body(client, police), headers=police)
    client.post("/v1/signals", json=body(client, care, "JH-77", "concern"), headers=care)
    assert [
        n["type"] for n in client.get("/v1/notifications", headers=meldpunt).get_json()["items"]
    ] == ["match"]
    assert client.get("/v1/notifications", headers=impostor).get_json()["items"] == []
