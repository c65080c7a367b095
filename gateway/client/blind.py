"""Blind submission for partner systems (RFC 9497 VOPRF; DESIGN.md "Blind submission").

The partner's identifiers never leave its system: it derives the same match keys the
gateway would, blinds each, has the gateway evaluate the blinded elements, checks the
DLEQ proof against the gateway's published key, unblinds, and submits the elements as
`matchKeys`. A proof that fails means the gateway evaluated under another key than it
publishes (e.g. to tag this partner's queries): nothing is submitted.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.client.errors import ApiError, KetenpoortError
from gateway.crypto import oprf
from gateway.pseudonyms.matchkeys import MULTI_VALUED, derive_linkage_keys

SUITE = "ristretto255-SHA512"
#: The member of `matchKeys` naming the OPRF key (DESIGN.md "Blind submission").
KEY_ID = "keyId"
#: Most elements the gateway evaluates per request (`gateway.oprf.service.MAX_ELEMENTS`).
BATCH = 64


class BlindEvaluationError(KetenpoortError):
    """The gateway's evaluation did not verify: a key switch or a broken answer."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise BlindEvaluationError("the gateway's answer is malformed")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise BlindEvaluationError("the gateway's answer is malformed") from exc


Request = Callable[..., Any]


@dataclass
class BlindKeys:
    """Derives `matchKeys` obliviously through one gateway; pins its keys by id."""

    request: Request
    #: keyId → public key seen; the same id with another key is a key switch.
    pinned: dict[str, bytes] = field(default_factory=dict)

    def current_key(self) -> tuple[str, bytes]:
        body = self.request("GET", "/oprf/key").json()
        if body.get("suite") != SUITE or body.get("mode") != "voprf":
            raise BlindEvaluationError("the gateway offers another OPRF suite or mode")
        key_id, public_key = str(body.get("keyId", "")), _unb64(body.get("publicKey"))
        try:
            oprf.check_element(public_key)
        except oprf.OprfError as exc:
            raise BlindEvaluationError("the gateway's public key is invalid") from exc
        known = self.pinned.setdefault(key_id, public_key)
        if known != public_key:
            raise BlindEvaluationError("the gateway changed the public key of a key id")
        return key_id, public_key

    def match_keys(self, subject: Mapping[str, Any]) -> dict[str, str | list[str]]:
        """`matchKeys` for a subject: the unblinded pseudonyms by family, and `keyId`,
        the OPRF key they were evaluated under (so that a submission racing a pseudonym
        rotation is moved to the new key by the gateway, or refused, never mislabelled)."""
        keys = derive_linkage_keys(dict(subject))
        flat = [(family, key) for family, values in sorted(keys.items()) for key in sorted(values)]
        for attempt in range(2):
            key_id, public_key = self.current_key()
            try:
                elements = self._evaluate(key_id, public_key, [k for _, k in flat])
            except ApiError as exc:
                if exc.status == 409 and exc.slug == "oprf-key-changed" and attempt == 0:
                    continue  # the key was rotated between our two calls: once more
                raise
            break
        found: dict[str, list[str]] = {}
        for (family, _), element in zip(flat, elements, strict=True):
            found.setdefault(family, []).append(_b64(element))
        keys_by_family: dict[str, str | list[str]] = {
            f: (v if f in MULTI_VALUED else v[0]) for f, v in found.items()
        }
        return {KEY_ID: key_id, **keys_by_family}

    def _evaluate(self, key_id: str, public_key: bytes, inputs: list[str]) -> list[bytes]:
        out: list[bytes] = []
        for start in range(0, len(inputs), BATCH):
            chunk = [x.encode() for x in inputs[start : start + BATCH]]
            blinds, blinded = zip(*(oprf.blind(x) for x in chunk), strict=True)
            body = self.request(
                "POST",
                "/oprf/evaluations",
                json_body={"keyId": key_id, "blindedElements": [_b64(b) for b in blinded]},
            ).json()
            evaluated = [_unb64(e) for e in body.get("evaluatedElements") or []]
            proof = body.get("proof") or {}
            packed = _unb64(proof.get("c")) + _unb64(proof.get("s"))
            if body.get("keyId") != key_id or len(evaluated) != len(chunk):
                raise BlindEvaluationError("the gateway's answer does not fit the request")
            if not oprf.verify_proof(public_key, list(blinded), evaluated, packed):
                raise BlindEvaluationError(
                    "the gateway's evaluation proof does not verify against its public key"
                )
            out.extend(oprf.unblind(r, e) for r, e in zip(blinds, evaluated, strict=True))
        return out
