"""A live gateway: the meldpunt's case system shares a case, and the partner's client
(`PartnerClient.shares()` and `ketenpoort partner shares`) fetches and decrypts it."""

from __future__ import annotations

import json
import random
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.demo.people import people
from tests.client.conftest import enrol, shared_gateway
from tests.integration.live import LiveGateway
from tests.oauth.support import DEFAULT_SCOPES

__all__ = ["shared_gateway"]  # the live gateway fixture of tests/client
SCOPES = f"{DEFAULT_SCOPES} shares:read"


def test_a_shared_case_is_decrypted_by_the_partner_client_and_cli(
    shared_gateway: LiveGateway, tmp_path: Path
) -> None:
    police = enrol(shared_gateway, "police", tmp_path, SCOPES)
    care = enrol(shared_gateway, "care", tmp_path, SCOPES)
    meldpunt = enrol(shared_gateway, "meldpunt", tmp_path, "cases:write").client()
    person = people(1, seed=random.randrange(2**32))[0]
    payload = {"summary": "Meisje (15) wordt opgehaald door een oudere man", "school": "ROC"}
    signal = police.client().submit_signal(
        "BVH-2026-501", "possible-victim", person.subject(), payload
    )

    case = meldpunt.request(
        "POST", "/cases", json_body={"title": "Casus ROC", "signalIds": [signal["id"]]}
    ).json()
    shared = meldpunt.request(
        "POST",
        f"/cases/{case['id']}/shares",
        json_body={
            "organisations": [care.org],
            "signalIds": [signal["id"]],
            "purpose": "care-referral",
        },
    )
    assert shared.status_code == 201 and shared.json()["status"] == "shared"

    (share,) = [s for s in care.client().shares() if s["caseId"] == case["id"]]
    assert share["purpose"] == "care-referral"
    assert [(s["id"], s["category"]) for s in share["signals"]] == [
        (signal["id"], "possible-victim")
    ]
    assert json.loads(share["signals"][0]["content"]) == payload
    assert not [s for s in police.client().shares() if s["caseId"] == case["id"]]

    config = care.write_config(tmp_path / "care.json", tmp_path / "care-state.json")
    lines = CliRunner().invoke(main, ["partner", "--config", str(config), "shares"])
    assert lines.exit_code == 0, lines.output
    found = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [s["id"] for s in found] == [share["id"]]
    as_json = CliRunner().invoke(main, ["partner", "--config", str(config), "shares", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == found
