"""`PartnerClient(..., blind=True)`: the submitted body carries `matchKeys`, never the
identifiers; the evaluations come from a stand-in gateway holding a pseudonym key."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from gateway.client import PartnerClient
from gateway.client.cli import generate_partner_keys
from gateway.crypto import oprf
from gateway.oprf.service import pseudonyms_from_match_keys
from gateway.pseudonyms import Pseudonymiser

SUBJECT = {
    "bsn": "123456782",
    "familyName": "Çelik",
    "givenNames": "Ayşe",
    "dateOfBirth": "2011-02-03",
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Answer:
    def __init__(self, body: Any) -> None:
        self.body = body

    def json(self) -> Any:
        return self.body


def test_blind_submission_sends_match_keys_and_no_subject(tmp_path: Path) -> None:
    keys = generate_partner_keys(tmp_path)
    gateway_key = Pseudonymiser(oprf.random_scalar(), kid="pseudonym-1")
    sent: list[tuple[str, str, Any]] = []

    def request(method: str, path: str, *, json_body: Any = None, **_: Any) -> _Answer:
        sent.append((method, path, json_body))
        if path == "/oprf/key":
            return _Answer(
                {
                    "suite": "ristretto255-SHA512",
                    "mode": "voprf",
                    "keyId": gateway_key.kid,
                    "publicKey": b64(gateway_key.public_key),
                }
            )
        if path == "/oprf/evaluations":
            blinded = [unb64(e) for e in json_body["blindedElements"]]
            evaluated, proof = gateway_key.blind_evaluate_batch(blinded)
            return _Answer(
                {
                    "keyId": json_body["keyId"],
                    "evaluatedElements": [b64(e) for e in evaluated],
                    "proof": {"c": b64(proof[:32]), "s": b64(proof[32:])},
                }
            )
        assert path == "/signals"
        return _Answer({"id": "s-1", "status": "active"})

    client = PartnerClient("https://gateway.test", "police-1", keys["signing"], blind=True)
    client.request = request  # type: ignore[method-assign]
    client.recipient_keys = lambda category: [  # type: ignore[method-assign]
        json.loads(Path(keys["public"]).read_text())["keys"][1]
    ]
    client._keep_receipt = lambda created, action: None  # type: ignore[method-assign]
    client.submit_signal("BVH-1", "possible-victim", SUBJECT, {"summary": "zorgen"})

    body = sent[-1][2]
    assert "subject" not in body and set(body) == {"reference", "category", "matchKeys", "payload"}
    text = json.dumps([s[2] for s in sent])
    for value in SUBJECT.values():
        assert value not in text  # no identifier leaves the partner
    assert "celik" not in text.lower()
    assert pseudonyms_from_match_keys(body["matchKeys"]) == gateway_key.linkage_pseudonyms(SUBJECT)
