"""`ketenpoort partner check`: passes for a partner set up as the README says, and names
the fix for each way a partner is typically misconfigured."""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from gateway.audit.models import AuditEntryRow
from gateway.cli import main
from gateway.client.check import Checklist
from gateway.client.cli import generate_partner_keys, load_config, make_client
from gateway.client.errors import ApiError
from gateway.db import Database
from gateway.demo.people import people
from gateway.signals.models import SignalPseudonymRow, SignalRow
from tests.client.conftest import MELDPUNT_SCOPES, enrol
from tests.client.test_partner_cli import _partner
from tests.integration.live import LiveGateway, free_port


def _statuses(config: Path) -> dict[str, str]:
    result = CliRunner().invoke(main, ["partner", "--config", str(config), "check", "--json"])
    return {c["name"]: c["status"] for c in json.loads(result.stdout)}


def test_a_partner_set_up_as_documented_passes(shared_gateway: LiveGateway, tmp_path: Path) -> None:
    config = _partner(shared_gateway, tmp_path, f"zorg-{uuid.uuid4().hex[:6]}", "care", None)
    result = CliRunner().invoke(main, ["partner", "--config", str(config), "check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    names = ("discovery", "clock", "token", "directory", "policy", "encryption")
    for name in (*names, "test signal", "notifications", "receipts"):
        assert any(line.startswith("PASS") and f" {name} " in line for line in lines), name
    assert "FAIL" not in result.output and "skip" not in result.output
    assert "erased at once" in result.output and "the test signal's at index" in result.output


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


def test_a_partner_without_signals_write_is_told_which_scope_to_ask_for(
    shared_gateway: LiveGateway, tmp_path: Path
) -> None:
    reader = enrol(
        shared_gateway, "care", tmp_path, "signals:read notifications:read directory:read"
    )
    results = Checklist(reader.client(state_path=tmp_path / "state.json")).run()
    test_signal = next(r for r in results if r.name == "test signal")
    assert test_signal.status == "fail"
    assert test_signal.fix and "signals:write" in test_signal.fix and "`test`" in test_signal.fix
    assert next(r for r in results if r.name == "policy").status == "pass"


def test_a_test_signal_is_erased_at_once_and_never_matched(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    """Even when the same person is reported for real before and after, the test signal
    leaves no row, payload or pseudonym, joins no match and reaches no one; its audit
    entry stays, without subject references, and proves the receipt."""
    police = enrol(own_gateway, "police", tmp_path).client()
    care = enrol(own_gateway, "care", tmp_path).client()
    school = enrol(own_gateway, "education", tmp_path).client(state_path=tmp_path / "s.json")
    meldpunt = enrol(own_gateway, "meldpunt", tmp_path, MELDPUNT_SCOPES).client()
    person = people(1, seed=random.randrange(2**32))[0]

    before = police.submit_signal("BVH-1", "possible-victim", person.subject(), {"s": "a"})
    test = school.submit_signal("CHECK-1", "test", person.subject(), {"check": True})
    after = care.submit_signal("JZ-1", "concern", person.subject(), {"s": "b"})
    assert test["status"] == "erased" and test["receipt"]["leafHash"]
    with pytest.raises(ApiError) as missing:
        school.signal(test["id"])
    assert missing.value.status == 404

    # the two real signals match each other, and nothing else does
    deadline = time.monotonic() + 20
    matches: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        matches = list(meldpunt.matches())
        if matches:
            break
        time.sleep(0.2)
    assert [{s["id"] for s in m["signals"]} for m in matches] == [  # type: ignore[attr-defined]
        {before["id"], after["id"]}
    ]
    for reader in (meldpunt, school, police):
        assert test["id"] not in {n.get("signalId") for n in reader.notifications(from_start=True)}

    database = Database(own_gateway.settings.database_url)
    try:
        with database.transaction() as session:
            assert session.scalar(select(func.count()).where(SignalRow.id == test["id"])) == 0
            assert session.scalar(select(func.count()).where(SignalRow.category == "test")) == 0
            rows = session.scalar(select(func.count()).select_from(SignalRow))
            pseudonym_signals = session.scalar(
                select(func.count(func.distinct(SignalPseudonymRow.signal_pk)))
            )
            assert rows == pseudonym_signals == 2  # the two real ones
            leaf = base64.b64decode(test["receipt"]["leafHash"])
            entry = session.execute(
                select(AuditEntryRow)
                .where(AuditEntryRow.leaf_hash == leaf)
                .options(selectinload(AuditEntryRow.subjects))
            ).scalar_one()
            assert entry.action == "signal.create" and entry.subjects == []
            assert b'"test":true' in entry.data.replace(b" ", b"")
    finally:
        database.dispose()
    assert school.verify().receipts_verified == 1


def test_an_unreachable_gateway_is_one_failed_line_and_the_rest_skipped(
    tmp_path: Path,
) -> None:
    config = tmp_path / "partner.json"
    key = generate_partner_keys(tmp_path / "keys")["signing"]
    config.write_text(
        json.dumps(
            {"issuer": f"http://127.0.0.1:{free_port()}", "client_id": "x", "signing_key": str(key)}
        )
    )
    client = make_client(load_config(config))
    client.max_attempts = 1
    results = Checklist(client).run()
    assert [r.status for r in results] == ["fail"] + ["skip"] * (len(results) - 1)
    assert results[0].fix and "issuer" in results[0].fix
