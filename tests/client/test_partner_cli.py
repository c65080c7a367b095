"""`ketenpoort partner …` end to end against a live gateway: a partner makes its keys,
the meldpunt registers the public JWKS with `ketenpoort partners add`, and the partner
submits, reads notifications, withdraws and verifies from the command line."""

from __future__ import annotations

import json
import random
import stat
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.demo.people import people
from tests.client.conftest import MELDPUNT_SCOPES
from tests.integration.live import LiveGateway


def _run(args: list[str], env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


def _partner(gateway: LiveGateway, tmp: Path, org: str, kind: str, scope: str | None) -> Path:
    """keys init, registration by the meldpunt, and the partner's config file."""
    keys = tmp / org / "keys"
    paths = _json(_run(["partner", "keys", "init", "--dir", str(keys)]))
    for name in ("signing", "encryption"):
        private = Path(paths[name])
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert "d" in json.loads(private.read_text())
    public = json.loads(Path(paths["public"]).read_text())
    assert {k["use"] for k in public["keys"]} == {"sig", "enc"}
    assert not any("d" in k for k in public["keys"])  # nothing private to hand over

    if kind == "meldpunt":  # the meldpunt's own system: a client of the existing organisation
        add = ["clients", "add", "meldpunt", "--jwks", paths["public"], "--scope", scope or ""]
    else:
        add = ["partners", "add", org, "--name", org.title(), "--kind", kind]
        add += ["--jwks", paths["public"]] + (["--scope", scope] if scope else [])
    registered = _json(_run(add, env=gateway.env()))
    config = tmp / org / "ketenpoort-partner.json"
    config.write_text(
        json.dumps(
            {
                "issuer": gateway.issuer,
                "client_id": registered["client_id"],
                "signing_key": paths["signing"],
                "encryption_key": paths["encryption"],
                "state": str(tmp / org / "state.json"),
            }
        )
    )
    return config


def test_partner_cli_end_to_end(shared_gateway: LiveGateway, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    police = _partner(shared_gateway, tmp_path, f"politie-{tag}", "police", None)
    school = _partner(shared_gateway, tmp_path, f"school-{tag}", "education", None)
    meldpunt = _partner(shared_gateway, tmp_path, "meldpunt", "meldpunt", MELDPUNT_SCOPES)
    _run(["partner", "--config", str(meldpunt), "notifications"])  # read what came before

    person = people(1, seed=random.randrange(2**32))[0]
    signals = []
    for config, reference, category, subject in (
        (police, "BVH-2026-77", "possible-victim", person.subject()),
        (school, "ROC-2026-12", "concern", person.subject(with_bsn=False)),
    ):
        signal_file = config.parent / "signal.json"
        signal_file.write_text(
            json.dumps(
                {
                    "reference": reference,
                    "category": category,
                    "subject": subject,
                    "payload": {"summary": "Zorgen over een leerling", "contact": "mentor"},
                }
            )
        )
        created = _json(_run(["partner", "--config", str(config), "submit", str(signal_file)]))
        assert created["status"] == "active" and created["reference"] == reference
        assert created["receipt"]["leafHash"]
        signals.append(created["id"])

    # the coordinator hears of the match once, across separate CLI runs (state file)
    heard = _json(_run(["partner", "--config", str(meldpunt), "notifications"]))
    assert [n["type"] for n in heard] == ["match"]
    matches = _json(_run(["partner", "--config", str(meldpunt), "matches"]))
    match = next(m for m in matches if m["id"] == heard[0]["matchId"])
    assert {s["id"] for s in match["signals"]} == set(signals)
    assert _json(_run(["partner", "--config", str(meldpunt), "notifications"])) == []
    assert _json(_run(["partner", "--config", str(police), "notifications"])) == []

    withdrawn = _json(_run(["partner", "--config", str(police), "withdraw", signals[0]]))
    assert withdrawn["status"] == "withdrawn"

    report = _json(_run(["partner", "--config", str(police), "verify"]))
    assert report["checkpointVerified"] is True
    assert report["receiptsVerified"] == 2 and report["receiptsPending"] == 0
    # configuration by environment instead of file; the state file keeps the history
    config = json.loads(police.read_text())
    env = {f"KETENPOORT_PARTNER_{k.upper()}": str(v) for k, v in config.items()}
    again = _json(_run(["partner", "--config", str(tmp_path / "absent.json"), "verify"], env))
    assert again["consistentWithPrevious"] is True
    assert again["checkpointSize"] >= report["checkpointSize"]


def test_partner_cli_errors_are_one_clear_line(shared_gateway: LiveGateway, tmp_path: Path) -> None:
    missing = CliRunner().invoke(
        main, ["partner", "--config", str(tmp_path / "none.json"), "verify"], env={}
    )
    assert missing.exit_code != 0
    assert f"the configuration file {tmp_path / 'none.json'} does not exist" in missing.output
    (tmp_path / "partial.json").write_text('{"issuer": "http://127.0.0.1:1"}')
    partial = CliRunner().invoke(
        main, ["partner", "--config", str(tmp_path / "partial.json"), "verify"], env={}
    )
    assert "missing configuration: client_id, signing_key" in partial.output

    police = _partner(shared_gateway, tmp_path, f"politie-{uuid.uuid4().hex[:6]}", "police", None)
    bad = tmp_path / "bad-signal.json"
    bad.write_text(
        json.dumps(
            {
                "reference": "BVH-2026-78",
                "category": "possible-victim",
                "subject": {"familyName": "Jansen"},  # no linkage key can be derived
                "payload": "x",
            }
        )
    )
    refused = CliRunner().invoke(main, ["partner", "--config", str(police), "submit", str(bad)])
    assert refused.exit_code == 1
    assert refused.output.startswith("error: 400 invalid-subject: ")  # one prefix everywhere
    assert "(/subject: " in refused.output  # the field errors, with their pointers
    assert "Traceback" not in refused.output
