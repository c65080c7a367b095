"""A partner witness follows a checkpoint key rotation through the checkpoint the old key
co-signed, pins the new key in its state, and refuses a key nobody handed over to; the
gateway's own verifier (database and API) follows the same chain. Live gateway, every
test backend."""

from __future__ import annotations

import json
import random
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.audit.note import SignedNote, VerifierKey, origin_for
from gateway.cli import main
from gateway.client import PartnerClient, WitnessError
from gateway.demo.people import people
from tests.audit.test_verify import cli_env
from tests.client.conftest import Enrolled, enrol
from tests.client.test_partner_rotation import _rotate
from tests.client.test_witness import _wait_until_sequenced
from tests.integration.live import LiveGateway


def _submit(client: PartnerClient, n: int) -> None:
    person = people(1, seed=random.randrange(2**32))[0]
    client.submit_signal(f"BVH-{n}", "possible-victim", person.subject(), {"s": str(n)})


def _witnessed_police(gateway: LiveGateway, folder: Path) -> tuple[Enrolled, PartnerClient, Path]:
    """A police partner whose witness state (the returned file) has pinned the current
    checkpoint key after proving one receipt: where each test's rotation starts from."""
    state = folder / "state.json"
    partner = enrol(gateway, "police", folder)
    police = partner.client(state_path=state)
    _submit(police, 1)
    assert police.verify().receipts_verified == 1
    return partner, police, state


def test_a_witness_follows_a_checkpoint_rotation_and_pins_the_new_key(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    partner, police, state = _witnessed_police(own_gateway, tmp_path)
    old_key = json.loads(state.read_text())["log_key"]

    _rotate(own_gateway, "checkpoint")
    _submit(police, 2)
    police.checkpoint()  # sequenced: the first checkpoint under the new key
    chain = police.request("GET", "/audit/key-chain").json()["keys"]
    assert chain[0]["key"] == old_key.strip()
    transition = SignedNote.parse(chain[-1]["checkpoint"])
    assert len(transition.signatures) == 2  # the new key's first checkpoint, co-signed

    report = partner.client(state_path=state).verify()  # a later run, from its state
    assert report.receipts_verified == 2 and report.consistent_with_previous is True
    pinned = json.loads(state.read_text())["log_key"]
    assert pinned != old_key and pinned.strip() == chain[-1]["key"]

    # the gateway's verifier follows the same chain: from the database ...
    env = cli_env(own_gateway.settings)
    # the database verifier reads checkpoints, then entries: let the gateway's own
    # sequencer finish first, or it may number entries in between (a race of the reader)
    _wait_until_sequenced(own_gateway.settings.database_url)
    verified = CliRunner().invoke(main, ["audit", "verify", "--no-progress", "--json"], env=env)
    assert verified.exit_code == 0, verified.output
    # ... and over the API from the old key, pinned earlier
    auditor = enrol(own_gateway, "meldpunt", tmp_path, "audit:read").client(dpop=False)
    old_file = tmp_path / "old.key"
    old_file.write_text(old_key)
    over_api = CliRunner().invoke(
        main,
        [
            *("audit", "verify", "--no-progress", "--json", "--url", own_gateway.issuer),
            *("--token", auditor.access_token(), "--key", str(old_file)),
        ],
        env=env,
    )
    assert over_api.exit_code == 0, over_api.output


def test_a_checkpoint_under_a_key_nobody_handed_over_to_is_refused(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    partner, _police, state = _witnessed_police(own_gateway, tmp_path)
    # the partner pinned a key that is not in the gateway's chain (as if the gateway
    # had switched to a key of its own making without the old key's co-signature)
    saved = json.loads(state.read_text())
    stranger = VerifierKey(origin_for(own_gateway.issuer), secrets.token_bytes(32))
    saved["log_key"] = stranger.text() + "\n"
    state.write_text(json.dumps(saved))
    with pytest.raises(WitnessError, match="unknown key"):
        partner.client(state_path=state).verify()
