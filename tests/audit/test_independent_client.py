"""An independent client holding only the public key verifies a checkpoint, an inclusion
proof and a consistency proof fetched over HTTP.

The client below shares no code with the gateway: it parses the signed note and the
verifier key itself, checks Ed25519 with `cryptography`, and verifies proofs with the
decomposition formulation of transparency-dev/merkle (not the RFC's loop that
`gateway.audit.rfc9162` uses).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask.testing import FlaskClient

from gateway.audit.sequencer import CheckpointSigner
from gateway.cli import main
from gateway.client import PartnerClient
from gateway.db import Database
from tests.audit.conftest import POLICE, empty_the_log, write_events
from tests.audit.test_verify import cli_env
from tests.integration.live import LiveGateway, live_gateway

ROOT_DIR = Path(__file__).resolve().parents[2]
Get = Callable[[str], tuple[int, str]]


# --- the independent client ------------------------------------------------------------


def _h(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


class Client:
    def __init__(self, verifier_key: str, get: Get) -> None:
        name, key_id, encoded = verifier_key.strip().split("+", 2)
        raw = base64.b64decode(encoded)
        assert raw[0] == 1 and len(raw) == 33
        assert _h(name.encode(), b"\n", raw)[:4].hex() == key_id
        self.name, self.key_id, self.public = name, bytes.fromhex(key_id), raw[1:]
        self.get = get

    def checkpoint(self) -> tuple[int, bytes]:
        status, note = self.get("/v1/audit/checkpoint")
        assert status == 200
        body, _, signatures = note.partition("\n\n")
        text = body + "\n"
        for line in signatures.splitlines():
            dash, name, sig = line.split(" ")
            raw = base64.b64decode(sig)
            if dash == "\u2014" and name == self.name and raw[:4] == self.key_id:
                Ed25519PublicKey.from_public_bytes(self.public).verify(raw[4:], text.encode())
                origin, size, root = text.splitlines()[:3]
                assert origin == self.name
                return int(size), base64.b64decode(root)
        raise AssertionError("no signature by our key")

    def json(self, path: str) -> Any:
        import json

        status, body = self.get(path)
        assert status == 200, body
        return json.loads(body)

    @staticmethod
    def _inner_border(index: int, size: int) -> tuple[int, int]:
        inner = (index ^ (size - 1)).bit_length()
        return inner, bin(index >> inner).count("1")

    @staticmethod
    def _chain_inner(seed: bytes, proof: list[bytes], index: int) -> bytes:
        for i, h in enumerate(proof):
            seed = _h(b"\x01", seed, h) if (index >> i) & 1 == 0 else _h(b"\x01", h, seed)
        return seed

    @staticmethod
    def _chain_inner_right(seed: bytes, proof: list[bytes], index: int) -> bytes:
        for i, h in enumerate(proof):
            if (index >> i) & 1:
                seed = _h(b"\x01", h, seed)
        return seed

    @staticmethod
    def _chain_border(seed: bytes, proof: list[bytes]) -> bytes:
        for h in proof:
            seed = _h(b"\x01", h, seed)
        return seed

    def check_inclusion(self, leaf: bytes, size: int, root: bytes) -> int:
        leaf_b64 = base64.urlsafe_b64encode(leaf).decode()
        body = self.json(f"/v1/audit/proofs/inclusion?leafHash={leaf_b64}&treeSize={size}")
        index, proof = body["index"], [base64.b64decode(x) for x in body["hashes"]]
        inner, border = self._inner_border(index, size)
        assert len(proof) == inner + border
        got = self._chain_border(self._chain_inner(leaf, proof[:inner], index), proof[inner:])
        assert got == root
        return int(index)

    def check_consistency(self, size1: int, root1: bytes, size2: int, root2: bytes) -> None:
        body = self.json(f"/v1/audit/proofs/consistency?first={size1}&second={size2}")
        proof = [base64.b64decode(x) for x in body["hashes"]]
        if size1 == size2:
            assert proof == [] and root1 == root2
            return
        inner, border = self._inner_border(size1 - 1, size2)
        shift = (size1 & -size1).bit_length() - 1
        inner -= shift
        seed, start = (root1, 0) if size1 == 1 << shift else (proof[0], 1)
        assert len(proof) == start + inner + border
        rest = proof[start:]
        mask = (size1 - 1) >> shift
        hash1 = self._chain_border(self._chain_inner_right(seed, rest[:inner], mask), rest[inner:])
        hash2 = self._chain_border(self._chain_inner(seed, rest[:inner], mask), rest[inner:])
        assert hash1 == root1 and hash2 == root2


# --- over the Flask test client --------------------------------------------------------


def test_independent_client_over_the_test_client(
    client: FlaskClient,
    token_headers: Callable[..., dict[str, str]],
    signer: CheckpointSigner,
    database: Database,
    sequence: Callable[..., int],
) -> None:
    headers = token_headers("care")  # any valid token: partners can be witnesses
    empty_the_log(database)  # the token's registration and issuance wrote entries

    def get(path: str) -> tuple[int, str]:
        response = client.get(path, headers=headers)
        return response.status_code, response.get_data(as_text=True)

    published_key = signer.verifier_key.text()  # handed over out of band
    assert get("/v1/audit/key")[1].strip() == published_key
    witness = Client(published_key, get)
    receipts = write_events(database, 7)
    sequence()
    size1, root1 = witness.checkpoint()
    assert size1 >= 7
    receipts += write_events(database, 13, POLICE)
    sequence()
    size2, root2 = witness.checkpoint()
    assert size2 > size1
    witness.check_consistency(size1, root1, size2, root2)
    for n in (1, 2, 3, 4, 5):
        witness.check_consistency(n, witness_root(database, n), size2, root2)
    assert witness.check_inclusion(receipts[3], size2, root2) == 3
    assert witness.check_inclusion(receipts[-1], size2, root2) >= 19
    with pytest.raises(AssertionError):
        witness.check_consistency(size1, hashlib.sha256(b"forged").digest(), size2, root2)


def witness_root(database: Database, size: int) -> bytes:
    from gateway.audit.tree import stored_root

    with database.session() as session:
        return stored_root(session, size)


# --- over a live gunicorn (two workers, each with its background sequencer) ---------------


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveGateway, PartnerClient]]:
    """`python -m gateway serve` (2 workers, background sequencers) and a meldpunt system
    holding a real access token with `audit:read`."""
    with live_gateway(database_url, tmp_path) as gateway:
        meldpunt = gateway.register("meldpunt", "meldpunt", "audit:read", dpop=False)
        yield gateway, meldpunt


@pytest.mark.slow
def test_independent_client_against_a_live_gateway(
    live: tuple[LiveGateway, PartnerClient],
) -> None:
    gateway, meldpunt = live
    url = gateway.issuer
    token = meldpunt.access_token()
    database = Database(gateway.settings.database_url)

    def get(path: str) -> tuple[int, str]:
        response = requests.get(
            url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        return response.status_code, response.text

    key = requests.get(
        f"{url}/v1/audit/key", headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).text
    witness = Client(key, get)
    receipts = write_events(database, 5)

    def wait_for(size: int) -> tuple[int, bytes]:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = witness.checkpoint()
            if found[0] >= size:
                return found
            time.sleep(0.1)
        raise AssertionError("the background sequencer did not catch up")

    size1, root1 = wait_for(5)
    receipts += write_events(database, 40)
    size2, root2 = wait_for(size1 + 40)
    witness.check_consistency(size1, root1, size2, root2)
    witness.check_inclusion(receipts[0], size2, root2)
    witness.check_inclusion(receipts[-1], size2, root2)
    database.dispose()
    # the whole log, verified over the API with the key alone
    result = CliRunner().invoke(
        main,
        ["audit", "verify", "--url", url, "--key", key.strip(), "--json", "--no-progress"],
        env={**cli_env(gateway.settings), "KETENPOORT_AUDIT_TOKEN": meldpunt.access_token()},
    )
    assert result.exit_code == 0, result.output
    assert '"ok": true' in result.stdout
