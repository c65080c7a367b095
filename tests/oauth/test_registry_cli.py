"""`ketenpoort partners add|list|disable`, `clients add`, the meldpunt from `init` on, and
`GET /v1/directory`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from gateway.bootstrap import initialise
from gateway.cli import main
from gateway.config import Settings
from gateway.keys import KeyPurpose
from tests.oauth.support import b64url, enc_key, new_key, public_of
from tests.oauth.test_token_endpoint import audit_actions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_env(settings: Settings, initialised: Any) -> dict[str, str]:
    from gateway.crypto import b64url

    assert settings.master_key is not None
    return {
        "KETENPOORT_DATABASE_URL": settings.database_url,
        "KETENPOORT_KEYS_DIR": str(settings.keys_dir),
        "KETENPOORT_MASTER_KEY": b64url(settings.master_key),
        "KETENPOORT_LOG_FORMAT": "json",
    }


def write_jwks(tmp_path: Path, keys: list[dict[str, Any]], name: str = "jwks.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"keys": keys}))
    return str(path)


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=env)


def last_json(output: str) -> Any:
    return json.loads(output[output.index("{") :])


def test_partners_add_prints_client_id_and_splits_keys(
    cli_env: dict[str, str], tmp_path: Path, app: Flask
) -> None:
    sig, (_, enc) = new_key(), enc_key()
    jwks = write_jwks(tmp_path, [public_of(sig), enc])
    result = run(
        cli_env,
        "partners",
        "add",
        "politie-oost",
        "--name",
        "Politie Oost",
        "--kind",
        "police",
        "--jwks",
        jwks,
        "--require-dpop",
    )
    assert result.exit_code == 0, result.output
    data = last_json(result.stdout)
    assert data["client_id"].startswith("politie-oost-")
    assert data["encryptionKeyIds"] == [enc["kid"]] and data["signingKeyIds"] == [sig["kid"]]
    assert data["requireDpop"] is True and data["clientId"] == data["client_id"]
    assert data["scope"] == (
        "signals:write signals:read notifications:read directory:read shares:read"
    )
    listed = last_json(run(cli_env, "partners", "list", "--json").stdout)["organisations"]
    assert {o["id"] for o in listed} == {"meldpunt", "politie-oost"}
    actions = [e["action"] for e in audit_actions(app)]
    assert "partner.register" in actions and "client.register" in actions
    cli_entry = [e for e in audit_actions(app) if e["action"] == "partner.register"][-1]
    assert cli_entry["actor"]["id"].startswith("cli:")


def small_rsa_public() -> dict[str, Any]:
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()  # noqa: S505

    def b64(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e)}


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
@pytest.mark.parametrize(
    ("key", "message"),
    [
        ({**new_key()}, "private key material"),
        ({k: v for k, v in public_of(new_key()).items() if k != "kid"}, "kid"),
        ({**small_rsa_public(), "kid": "small", "use": "sig"}, "2048"),
        ({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "use": "sig"}, "private key"),
    ],
    ids=["private", "no-kid", "rsa-1024", "symmetric"],
)
def test_partners_add_refuses_bad_keys(
    cli_env: dict[str, str], tmp_path: Path, key: dict[str, Any], message: str
) -> None:
    jwks = write_jwks(tmp_path, [key])
    result = run(
        cli_env, "partners", "add", "zorg", "--name", "Zorg", "--kind", "care", "--jwks", jwks
    )
    assert result.exit_code != 0
    assert message in result.stderr and result.stderr.startswith("error: ")


def test_partners_add_refuses_unknown_kind(cli_env: dict[str, str], tmp_path: Path) -> None:
    jwks = write_jwks(tmp_path, [public_of(new_key())])
    result = run(
        cli_env, "partners", "add", "x-org", "--name", "X", "--kind", "bank", "--jwks", jwks
    )
    assert result.exit_code != 0 and "unknown kind" in result.stderr


def test_partners_add_refuses_meldpunt_scopes_for_a_partner(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    jwks = write_jwks(tmp_path, [public_of(new_key())])
    result = run(
        cli_env,
        "partners",
        "add",
        "school",
        "--name",
        "School",
        "--kind",
        "education",
        "--jwks",
        jwks,
        "--scope",
        "cases:write",
    )
    assert result.exit_code != 0 and "cases:write" in result.stderr


def test_clients_add_for_meldpunt(cli_env: dict[str, str], tmp_path: Path) -> None:
    jwks = write_jwks(tmp_path, [public_of(new_key("PS256"))])
    result = run(cli_env, "clients", "add", "meldpunt", "--jwks", jwks, "--scope", "cases:write")
    assert result.exit_code == 0, result.output
    data = last_json(result.stdout)
    assert data["client_id"].startswith("meldpunt-") and data["scope"] == "cases:write"
    audit = run(cli_env, "clients", "add", "meldpunt", "--jwks", jwks, "--scope", "audit:read")
    assert audit.exit_code == 0, audit.output
    missing = run(cli_env, "clients", "add", "nobody", "--jwks", jwks, "--scope", "signals:read")
    assert missing.exit_code != 0 and "no organisation" in missing.stderr


def test_partners_disable(cli_env: dict[str, str], tmp_path: Path, client: FlaskClient) -> None:
    jwks = write_jwks(tmp_path, [public_of(new_key())])
    run(
        cli_env,
        "partners",
        "add",
        "gemeente",
        "--name",
        "Gemeente",
        "--kind",
        "municipality",
        "--jwks",
        jwks,
    )
    result = run(cli_env, "partners", "disable", "gemeente", "--json")
    assert result.exit_code == 0 and last_json(result.stdout)["status"] == "disabled"
    refused = run(cli_env, "partners", "disable", "meldpunt")
    assert refused.exit_code != 0


def test_meldpunt_exists_from_init_with_the_key_store_key(
    settings: Settings,
    initialised: dict[str, Any],
    token_headers: Any,
    client: FlaskClient,
    app: Flask,
) -> None:
    assert initialised["meldpuntUpdated"] is True
    assert initialise(settings)["meldpuntUpdated"] is False  # idempotent
    expected = app.extensions["ketenpoort"].keys.active(KeyPurpose.MELDPUNT_ENCRYPTION)
    body = client.get("/v1/directory", headers=token_headers(scopes="directory:read")).get_json()
    meldpunt = next(o for o in body["organisations"] if o["id"] == "meldpunt")
    assert meldpunt["kind"] == "meldpunt"
    (key,) = meldpunt["encryptionKeys"]["keys"]
    assert key["kid"] == expected.kid and key["use"] == "enc" and "d" not in key


def test_directory_lists_active_organisations_and_is_audited(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    from gateway.partners.registry import disable_organisation
    from tests.oauth.support import ADMIN

    headers = token_headers("care", scopes="directory:read")
    token_headers("education", scopes="directory:read")
    with app.extensions["ketenpoort"].db.transaction() as session:
        disable_organisation(session, "education", actor=ADMIN)
    response = client.get("/v1/directory", headers=headers)
    assert response.status_code == 200
    organisations = response.get_json()["organisations"]
    assert [o["id"] for o in organisations] == ["care", "meldpunt"]
    for org in organisations:
        assert set(org) == {"id", "name", "kind", "encryptionKeys"}
        assert all(k["use"] == "enc" for k in org["encryptionKeys"]["keys"])
    reads = [e for e in audit_actions(app) if e["action"] == "directory.read"]
    assert reads and reads[-1]["actor"]["organisation"] == "care"


def test_one_client_with_audit_read_and_cases_write_is_refused(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Separation of duties: the case system and the log reviewer are separate clients,
    unless the policy's `separate_scopes` allows the combination."""
    jwks = write_jwks(tmp_path, [public_of(new_key())])
    both = "signals:read cases:write audit:read"
    refused = run(cli_env, "clients", "add", "meldpunt", "--jwks", jwks, "--scope", both)
    assert refused.exit_code != 0
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "audit:read and cases:write" in lines[0], refused.stderr
    assert "separate_scopes" in lines[0] and "Traceback" not in refused.output
    sig, (_, enc) = new_key(), enc_key()
    org_jwks = write_jwks(tmp_path, [public_of(sig), enc], "org.json")
    first = run(
        cli_env,
        "partners",
        "add",
        "meldpunt-oost",
        "--name",
        "Meldpunt Oost",
        "--kind",
        "meldpunt",
        "--jwks",
        org_jwks,
        "--scope",
        "cases:write audit:read",
    )
    assert first.exit_code != 0 and "separate_scopes" in first.stderr
    # a policy that allows the combination
    policy = tmp_path / "policy.yaml"
    text = (ROOT / "policies" / "twente.yaml").read_text(encoding="utf-8")
    policy.write_text(
        text.replace("separate_scopes:\n  - [audit:read, cases:write]", "separate_scopes: []"),
        encoding="utf-8",
    )
    allowed_env = {**cli_env, "KETENPOORT_POLICY": str(policy)}
    allowed = run(allowed_env, "clients", "add", "meldpunt", "--jwks", jwks, "--scope", both)
    assert allowed.exit_code == 0, allowed.output
