"""Blind submission over HTTP: the key, evaluations with a proof, and the client side.

A blind client (the real `BlindKeys`, talking to the test app) must end up with
exactly the pseudonyms a plain submission of the same person gets.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.client.blind import BlindEvaluationError, BlindKeys
from gateway.crypto import oprf
from gateway.errors import InvalidInput
from gateway.oprf.service import MAX_ELEMENTS, pseudonyms_from_match_keys
from gateway.oprf.views import pseudonymiser
from gateway.services import services
from tests.test_http_conventions import assert_problem

SUBJECT = {
    "bsn": "123456782",
    "familyName": "van den Berg",
    "givenNames": "Anna Maria",
    "dateOfBirth": "2010-04-07",
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Answer:
    """What `BlindKeys` reads of a `requests.Response`: `.json()`."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def json(self) -> Any:
        return self.body


def transport(client: FlaskClient, headers: dict[str, str], tamper: Any = None) -> Any:
    """`PartnerClient.request` over the Flask test client (raises like it on errors)."""
    from gateway.client.errors import ApiError

    def request(method: str, path: str, *, json_body: Any = None) -> _Answer:
        response = client.open(f"/v1{path}", method=method, json=json_body, headers=headers)
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.get_json(force=True))
        body = response.get_json()
        if tamper is not None:
            tamper(path, body)
        return _Answer(body)

    return request


def test_key_is_published(client: FlaskClient, app: Flask) -> None:
    response = client.get("/v1/oprf/key")
    assert response.status_code == 200
    body = response.get_json()
    assert body["suite"] == "ristretto255-SHA512" and body["mode"] == "voprf"
    with app.app_context():
        mine = pseudonymiser()
        assert body["keyId"] == mine.kid
        assert unb64(body["publicKey"]) == mine.public_key


def test_evaluation_verifies_and_unblinds_to_the_plain_pseudonym(
    client: FlaskClient, app: Flask, token_headers: Any
) -> None:
    police = token_headers("police")
    key = client.get("/v1/oprf/key").get_json()
    match_key = b"ketenpoort:v1:bsn:123456782"
    r, blinded = oprf.blind(match_key)
    response = client.post(
        "/v1/oprf/evaluations",
        json={"keyId": key["keyId"], "blindedElements": [b64(blinded)]},
        headers=police,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    evaluated = [unb64(e) for e in body["evaluatedElements"]]
    proof = unb64(body["proof"]["c"]) + unb64(body["proof"]["s"])
    assert oprf.verify_proof(unb64(key["publicKey"]), [blinded], evaluated, proof)
    with app.app_context():
        assert oprf.unblind(r, evaluated[0]) == pseudonymiser().pseudonym(match_key.decode())
        with services().db.session() as session:
            entries = session.execute(
                select(AuditEntryRow.data).where(AuditEntryRow.action == "oprf.evaluate")
            ).scalars()
            logged = [json.loads(e) for e in entries]
    assert len(logged) == 1
    text = json.dumps(logged)
    assert logged[0]["detail"] == {"elements": 1}
    assert b64(blinded) not in text and body["evaluatedElements"][0] not in text


def test_evaluations_need_signals_write(client: FlaskClient, token_headers: Any) -> None:
    reader = token_headers("police", "signals:read")
    key = client.get("/v1/oprf/key").get_json()
    _, blinded = oprf.blind(b"x")
    response = client.post(
        "/v1/oprf/evaluations",
        json={"keyId": key["keyId"], "blindedElements": [b64(blinded)]},
        headers=reader,
    )
    assert_problem(response, 403, "insufficient-scope")
    assert client.post("/v1/oprf/evaluations", json={}).status_code == 401


@pytest.mark.parametrize(
    ("elements", "slug"),
    [
        (["not base64!"], "invalid-input"),
        ([b64(bytes(32))], "invalid-input"),  # the identity
        ([b64(b"\xff" * 32)], "invalid-input"),  # not a canonical encoding
        ([], "invalid-input"),
        ([b64(oprf.blind(b"x")[1])] * (MAX_ELEMENTS + 1), "invalid-input"),  # bounded
    ],
)
def test_bad_elements_are_400(
    client: FlaskClient, token_headers: Any, elements: list[str], slug: str
) -> None:
    police = token_headers("police")
    key = client.get("/v1/oprf/key").get_json()
    response = client.post(
        "/v1/oprf/evaluations",
        json={"keyId": key["keyId"], "blindedElements": elements},
        headers=police,
    )
    assert_problem(response, 400, slug)


def test_a_stale_key_id_is_409(client: FlaskClient, token_headers: Any) -> None:
    police = token_headers("police")
    _, blinded = oprf.blind(b"x")
    response = client.post(
        "/v1/oprf/evaluations",
        json={"keyId": "an-old-key", "blindedElements": [b64(blinded)]},
        headers=police,
    )
    assert_problem(response, 409, "oprf-key-changed")


def test_blind_client_gets_the_plain_pseudonyms(
    client: FlaskClient, app: Flask, token_headers: Any
) -> None:
    police = token_headers("police")
    blind = BlindKeys(transport(client, police))
    match_keys = blind.match_keys(SUBJECT)
    accepted = pseudonyms_from_match_keys(match_keys)
    with app.app_context():
        plain = pseudonymiser().linkage_pseudonyms(SUBJECT)
    assert accepted == plain
    assert set(accepted) >= {"bsn", "name_dob", "del_dob", "phon_dob"}


def test_blind_client_detects_a_key_switch(client: FlaskClient, token_headers: Any) -> None:
    police = token_headers("police")
    other = oprf.random_scalar()

    def switch(path: str, body: dict[str, Any]) -> None:
        if path == "/oprf/evaluations":  # evaluate under another key than published
            blinded_again = [oprf.blind(b"y")[1] for _ in body["evaluatedElements"]]
            evaluated, proof = oprf.blind_evaluate_batch(
                other, oprf.scalar_base_mult(other), blinded_again
            )
            body["evaluatedElements"] = [b64(e) for e in evaluated]
            body["proof"] = {"c": b64(proof[:32]), "s": b64(proof[32:])}

    with pytest.raises(BlindEvaluationError):
        BlindKeys(transport(client, police, switch)).match_keys(SUBJECT)

    def republish(path: str, body: dict[str, Any]) -> None:
        if path == "/oprf/key":
            body["publicKey"] = b64(oprf.scalar_base_mult(other))

    keys = BlindKeys(transport(client, police))
    keys.current_key()
    keys.request = transport(client, police, republish)
    with pytest.raises(BlindEvaluationError):
        keys.current_key()  # same key id, another public key


@pytest.mark.parametrize(
    "match_keys",
    [
        None,
        {},
        {"unknown": b64(oprf.blind(b"x")[1])},
        {"bsn": [b64(oprf.blind(b"x")[1])]},  # single-valued family given a list
        {"del_dob": 5},  # neither an element nor a list
        {"del_dob": {"0": b64(oprf.blind(b"x")[1])}},
        {"bsn": b64(bytes(32))},
        {"del_dob": []},
    ],
)
def test_invalid_match_keys_are_refused_without_echo(match_keys: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        pseudonyms_from_match_keys(match_keys)
    assert caught.value.status == 400
    text = repr(caught.value.errors)
    assert "unknown" not in text


def test_one_element_is_accepted_for_any_family() -> None:
    """DESIGN.md's form (`FAMILY: element`) holds for every family; a list is for more.

    `given_dob` became multi-valued (several given names also joined): a blind client
    from before that sends it as one string and must not be refused."""
    element = oprf.blind(b"x")[1]
    found = pseudonyms_from_match_keys({"given_dob": b64(element), "del_dob": b64(element)})
    assert found == {"given_dob": frozenset({element}), "del_dob": frozenset({element})}


def test_every_bad_element_and_an_unserved_key_are_one_400(
    client: FlaskClient, token_headers: Any
) -> None:
    police = token_headers("police")
    response = client.post(
        "/v1/oprf/evaluations",
        json={"keyId": "nope", "blindedElements": ["AAAA", "!!"]},
        headers=police,
    )
    problem = assert_problem(response, 400, "invalid-input")
    assert {e["pointer"] for e in problem["errors"]} == {
        "/keyId",
        "/blindedElements/0",
        "/blindedElements/1",
    }
    # alone, an unserved key stays a 409: the request was right when it was made
    good = b64(oprf.blind(b"x")[1])
    alone = client.post(
        "/v1/oprf/evaluations", json={"keyId": "nope", "blindedElements": [good]}, headers=police
    )
    assert_problem(alone, 409, "oprf-key-changed")
    # the schema's errors and the elements' together
    mixed = client.post(
        "/v1/oprf/evaluations",
        json={"keyId": "", "blindedElements": [good, "!!"], "extra": 1},
        headers=police,
    )
    problem = assert_problem(mixed, 400, "invalid-input")
    assert {e["pointer"] for e in problem["errors"]} == {"/keyId", "/blindedElements/1", "/extra"}
