"""Weakness 12 of the outside attack: the envelope check covered only the meldpunt's copy.

Other recipients' copies with a garbage `encrypted_key` were accepted, and so were
recipients the category does not allow; the policy's optional recipient kinds were not
enforced. Now every recipient must be required, or of a kind the category allows, and
every wrapped key must have the form its key and algorithm produce.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from jwcrypto import jwk as jwcrypto_jwk

from gateway.actors import Actor
from gateway.crypto.jwe import encrypt_for_recipients
from gateway.partners.registry import add_organisation
from tests.signals.test_api import SUBJECT
from tests.test_http_conventions import assert_problem

ADMIN = Actor(type="user", id="cli:test", role="admin")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _envelope(client: FlaskClient, headers: dict[str, str], orgs: set[str]) -> dict[str, Any]:
    directory = client.get("/v1/directory", headers=headers).get_json()["organisations"]
    keys = [k for org in directory if org["id"] in orgs for k in org["encryptionKeys"]["keys"]]
    assert {org["id"] for org in directory} >= orgs
    return encrypt_for_recipients(b'{"summary": "zorgen"}', keys)


def _submit(
    client: FlaskClient, headers: dict[str, str], category: str, payload: dict[str, Any]
) -> Any:
    signal = {"reference": "REF-1", "category": category, "subject": SUBJECT, "payload": payload}
    return client.post("/v1/signals", json=signal, headers=headers)


def _recipient_of(
    client: FlaskClient, headers: dict[str, str], payload: dict[str, Any], org: str
) -> dict[str, Any]:
    directory = client.get("/v1/directory", headers=headers).get_json()["organisations"]
    kids = {k["kid"] for o in directory if o["id"] == org for k in o["encryptionKeys"]["keys"]}
    found = [r for r in payload["recipients"] if r["header"]["kid"] in kids]
    assert len(found) == 1
    recipient: dict[str, Any] = found[0]
    return recipient


def test_an_optional_kind_is_accepted(
    client: FlaskClient, police: dict[str, str], care: dict[str, str]
) -> None:
    # possible-victim: required [meldpunt], optional kinds [care, municipality, police]
    payload = _envelope(client, police, {"meldpunt", "care", "police"})
    assert _submit(client, police, "possible-victim", payload).status_code == 201


def test_a_recipient_the_category_does_not_allow_is_400(
    client: FlaskClient, police: dict[str, str], token_headers: Any
) -> None:
    token_headers("education")
    # concern: optional kinds [care, municipality]; neither police nor education
    for extra in ("police", "education"):
        payload = _envelope(client, police, {"meldpunt", extra})
        problem = assert_problem(
            _submit(client, police, "concern", payload), 400, "recipient-not-allowed"
        )
        assert problem["errors"] == [
            {
                "pointer": "/payload/recipients",
                "detail": f"organisation '{extra}' may not receive this category",
            }
        ]


def test_a_garbage_wrapped_key_for_another_partner_is_400(
    client: FlaskClient, police: dict[str, str], care: dict[str, str]
) -> None:
    payload = _envelope(client, police, {"meldpunt", "care"})
    theirs = _recipient_of(client, police, payload, "care")
    for garbage in (b"\x00" * 39, b"\x01" * 41, b""):
        theirs["encrypted_key"] = _b64(garbage)
        assert_problem(
            _submit(client, police, "possible-victim", payload), 400, "malformed-envelope"
        )


def test_an_epk_off_the_curve_for_another_partner_is_400(
    client: FlaskClient, police: dict[str, str], care: dict[str, str]
) -> None:
    payload = _envelope(client, police, {"meldpunt", "care"})
    theirs = _recipient_of(client, police, payload, "care")
    epk = dict(theirs["header"]["epk"])
    y = bytearray(_unb64(epk["y"]))
    y[-1] ^= 1
    theirs["header"]["epk"] = {**epk, "y": _b64(bytes(y))}
    problem = assert_problem(
        _submit(client, police, "possible-victim", payload), 400, "malformed-envelope"
    )
    assert any(e["pointer"].endswith("/header/epk") for e in problem["errors"])


def test_an_rsa_wrapped_key_must_fit_the_modulus(
    app: Flask, client: FlaskClient, police: dict[str, str]
) -> None:
    key = jwcrypto_jwk.JWK.generate(kty="RSA", size=2048, kid="rsa-zorg-1", use="enc")
    with app.extensions["ketenpoort"].db.transaction() as session:
        add_organisation(
            session,
            org_id="rsa-zorg",
            name="RSA zorg",
            kind="care",
            encryption_keys=[json.loads(key.export_public())],
            actor=ADMIN,
        )
    payload = _envelope(client, police, {"meldpunt", "rsa-zorg"})
    theirs = _recipient_of(client, police, payload, "rsa-zorg")
    good = theirs["encrypted_key"]
    assert len(_unb64(good)) == 256
    for garbage in (_unb64(good)[:255], _unb64(good) + b"\x00", b"\xff" * 256):
        theirs["encrypted_key"] = _b64(garbage)
        problem = assert_problem(
            _submit(client, police, "possible-victim", payload), 400, "malformed-envelope"
        )
        assert problem["errors"][0]["pointer"].endswith("/encrypted_key")
    theirs["encrypted_key"] = good
    assert _submit(client, police, "possible-victim", payload).status_code == 201
