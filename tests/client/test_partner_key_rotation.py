"""`ketenpoort partner keys rotate` end to end against a live gateway: new keys are made
and the operator's `partners keys add` command printed; the old keys keep working until
the gateway knows the new ones; a second run switches the configuration; the old
encryption key still opens what was encrypted to it; the operator removes the old key."""

from __future__ import annotations

import json
import random
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.client import OAuthError, PartnerClient
from gateway.client.cli import load_config, make_client
from gateway.crypto.jwe import encrypt_for_recipients
from gateway.demo.people import people
from tests.audit.test_verify import cli_env
from tests.client.conftest import enrol
from tests.integration.live import LiveGateway


def _partner(config: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["partner", "--config", str(config), *args, "--json"])
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _operator(gateway: LiveGateway, command: str, folder: Path) -> dict[str, Any]:
    args = shlex.split(command)
    assert args[:3] == ["ketenpoort", "partners", "keys"]
    args = [str(folder / a) if a.endswith(".jwks.json") else a for a in args[1:]]
    result = CliRunner().invoke(main, [*args, "--json"], env=cli_env(gateway.settings))
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _submit(client: PartnerClient, n: int) -> None:
    person = people(1, seed=random.randrange(2**32))[0]
    created = client.submit_signal(f"BVH-{n}", "possible-victim", person.subject(), {"n": n})
    assert created["status"] == "active"


def test_a_partner_rotates_its_own_keys_without_a_refused_request(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    partner = enrol(own_gateway, "police", tmp_path)
    config = partner.write_config(tmp_path / "partner.json", tmp_path / "state.json")
    old_encryption = partner.encryption_public

    started = _partner(config, "keys", "rotate")
    assert started["status"] == "pending"
    command = started["operatorCommand"]
    assert command.startswith(f"ketenpoort partners keys add {partner.org} --jwks public-")
    assert f"--client {partner.client_id}" in command
    _submit(make_client(load_config(config)), 1)  # the old keys keep working
    waiting = _partner(config, "keys", "rotate")
    assert waiting["status"] == "pending" and len(waiting["waitingFor"]) == 2

    added = _operator(own_gateway, command, partner.folder)
    assert started["newKeyIds"]["signing"] in added["signingKeyIds"]
    assert added["encryptionKeyIds"][0] == started["newKeyIds"]["encryption"]
    _submit(make_client(load_config(config)), 2)  # still the old configuration

    switched = _partner(config, "keys", "rotate")
    assert switched["status"] == "switched"
    saved = json.loads(config.read_text())
    assert saved["signing_key"].endswith(".jwk.json") and "signing-" in saved["signing_key"]
    assert saved["previous_encryption_keys"] == [str(partner.folder / "encryption.jwk.json")]
    client = make_client(load_config(config))
    assert client.encryption_key_id() == started["newKeyIds"]["encryption"]
    _submit(client, 3)
    # a payload encrypted to the old key (a share from before) still opens
    sealed = encrypt_for_recipients(b"van voor de wissel", [old_encryption], flattened=True)
    assert client.decrypt(sealed) == b"van voor de wissel"

    # the operator removes the old signing key: it no longer gets a token, the new one does
    for removal in switched["operatorCommands"]:
        _operator(own_gateway, removal, partner.folder)
    with pytest.raises(OAuthError):
        partner.client().access_token()
    _submit(make_client(load_config(config)), 4)
