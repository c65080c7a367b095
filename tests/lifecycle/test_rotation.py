"""Key rotation: each kind audited, no valid request refused, old material still works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.cases.approvals import meldpunt_plaintext
from gateway.cli import main
from gateway.keys import KeyPurpose
from gateway.oauth.keys import TokenSigningKeys
from gateway.signals.models import SignalRow
from tests.audit.test_verify import cli_env
from tests.signals.test_api import body


def _cli(app: Flask, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=cli_env(app.extensions["ketenpoort"].settings))


def _rotate(app: Flask, kind: str) -> dict[str, Any]:
    result = _cli(app, "keys", "rotate", kind, "--json")
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _rotations(app: Flask) -> list[dict[str, Any]]:
    with app.extensions["ketenpoort"].db.session() as session:
        rows = session.execute(select(AuditEntryRow).where(AuditEntryRow.action == "key.rotate"))
        return [json.loads(r.data) for r in rows.scalars()]


def test_token_signing_key_is_published_before_use_and_old_tokens_stay_valid(
    app: Flask, client: FlaskClient, police: dict[str, str]
) -> None:
    keys = app.extensions["ketenpoort"].keys
    old = keys.active(KeyPurpose.TOKEN_SIGNING).kid
    rotated = _rotate(app, "token-signing")
    assert rotated["retired"] == [old] and rotated["kid"] != old
    published = {k["kid"] for k in client.get("/oauth/jwks").get_json()["keys"]}
    assert {old, rotated["kid"]} <= published
    # The token issued before the rotation is still accepted.
    response = client.get("/v1/signals", headers=police)
    assert response.status_code == 200, response.get_json()
    # A new key signs only once it has been published for the JWKS cache time.
    assert TokenSigningKeys(keys, publish_ahead=3600).signing_key()[0] == old
    assert TokenSigningKeys(keys, publish_ahead=0).signing_key()[0] == rotated["kid"]
    (entry,) = _rotations(app)
    assert entry["resource"]["id"] == rotated["kid"] and entry["detail"]["kind"] == "token-signing"


def test_checkpoint_key_rotation_keeps_the_log_verifying(app: Flask) -> None:
    assert _cli(app, "audit", "sequence").exit_code == 0
    rotated = _rotate(app, "checkpoint")
    assert _cli(app, "audit", "sequence").exit_code == 0
    verified = _cli(app, "audit", "verify", "--no-progress", "--json")
    assert verified.exit_code == 0, verified.output
    keys = app.extensions["ketenpoort"].keys
    assert keys.active(KeyPurpose.AUDIT_CHECKPOINT).kid == rotated["kid"]


def test_encryption_rotation_refuses_no_partner_and_old_payloads_still_decrypt(
    app: Flask, client: FlaskClient, police: dict[str, str]
) -> None:
    stale = body(client, police)  # encrypted from the directory before the rotation
    before = client.post("/v1/signals", json=body(client, police, "BVH-1"), headers=police)
    assert before.status_code == 201, before.get_json()
    rotated = _rotate(app, "encryption")
    directory = client.get("/v1/directory", headers=police).get_json()["organisations"]
    (meldpunt,) = [o for o in directory if o["id"] == "meldpunt"]
    assert [k["kid"] for k in meldpunt["encryptionKeys"]["keys"]] == [
        rotated["kid"],
        *rotated["retired"],
    ]
    late = client.post("/v1/signals", json=stale, headers=police)
    assert late.status_code == 201, late.get_json()
    fresh = client.post("/v1/signals", json=body(client, police, "BVH-3"), headers=police)
    assert fresh.status_code == 201, fresh.get_json()
    keys = app.extensions["ketenpoort"].keys
    with app.extensions["ketenpoort"].db.session() as session:
        stored = [p for p in session.execute(select(SignalRow.payload)).scalars() if p]
    assert len(stored) == 3
    for payload in stored:
        assert meldpunt_plaintext(keys, payload) == b'{"summary": "zorgen over uitbuiting"}'


def test_rotating_an_unknown_kind_is_a_usage_error(app: Flask, tmp_path: Path) -> None:
    result = _cli(app, "keys", "rotate", "master")
    assert result.exit_code == 2
