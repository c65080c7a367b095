"""`ketenpoort partner check`: passes for a partner set up as the README says, and names
the fix for each way a partner is typically misconfigured."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.client.check import Checklist
from gateway.client.cli import generate_partner_keys, load_config, make_client
from tests.client.test_partner_cli import _partner
from tests.integration.live import LiveGateway


def _statuses(config: Path) -> dict[str, str]:
    result = CliRunner().invoke(main, ["partner", "--config", str(config), "check", "--json"])
    return {c["name"]: c["status"] for c in json.loads(result.stdout)}


def test_a_partner_set_up_as_documented_passes(shared_gateway: LiveGateway, tmp_path: Path) -> None:
    config = _partner(shared_gateway, tmp_path, f"zorg-{uuid.uuid4().hex[:6]}", "care", None)
    result = CliRunner().invoke(main, ["partner", "--config", str(config), "check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in ("discovery", "clock", "token", "directory", "policy", "encryption"):
        assert any(line.startswith("PASS") and f" {name} " in line for line in lines), name
    assert "FAIL" not in result.output


def test_misconfigured_partners_get_named_fixes(
    shared_gateway: LiveGateway, tmp_path: Path
) -> None:
    config = _partner(shared_gateway, tmp_path, f"school-{uuid.uuid4().hex[:6]}", "education", None)
    good = json.loads(config.read_text())

    # a signing key the gateway never registered
    stranger = generate_partner_keys(tmp_path / "stranger")
    wrong_key = tmp_path / "wrong-key.json"
    wrong_key.write_text(json.dumps({**good, "signing_key": str(stranger["signing"])}))
    results = Checklist(make_client(load_config(wrong_key))).run()
    token = next(r for r in results if r.name == "token")
    assert token.status == "fail" and token.fix and "public.jwks.json" in token.fix
    assert {r.status for r in results if r.name in ("directory", "receipts")} == {"skip"}

    # an encryption key that is not the one published in the directory
    wrong_enc = tmp_path / "wrong-enc.json"
    wrong_enc.write_text(json.dumps({**good, "encryption_key": str(stranger["encryption"])}))
    results = Checklist(make_client(load_config(wrong_enc))).run()
    directory = next(r for r in results if r.name == "directory")
    assert directory.status == "fail" and directory.fix and "use: enc" in directory.fix

    # a clock four minutes fast
    fast = Checklist(
        make_client(load_config(config)), clock=lambda: __import__("time").time() + 240
    )
    clock = next(r for r in fast.run() if r.name == "clock")
    assert clock.status == "fail" and clock.fix and "NTP" in clock.fix

    # the wrong issuer
    wrong_issuer = tmp_path / "wrong-issuer.json"
    wrong_issuer.write_text(json.dumps({**good, "issuer": good["issuer"] + "/nope"}))
    assert _statuses(wrong_issuer)["discovery"] == "fail"
