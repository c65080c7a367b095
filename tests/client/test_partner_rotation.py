"""The partner client follows the gateway's key rotations, against a live gateway: a
directory copy from before an encryption rotation is read again when the gateway no
longer knows its key (one retry), and tokens keep working across a token-signing one."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from gateway.cli import main
from gateway.client import ApiError, PartnerClient
from gateway.demo.people import Person, people
from gateway.signals.directory import TTL_SECONDS
from tests.audit.test_verify import cli_env
from tests.client.conftest import MELDPUNT_SCOPES, enrol
from tests.integration.live import LiveGateway


def _person() -> Person:
    return people(1, seed=random.randrange(2**32))[0]


def _rotate(gateway: LiveGateway, kind: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        main, ["keys", "rotate", kind, "--json"], env=cli_env(gateway.settings)
    )
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _meldpunt_kids(directory: list[dict[str, Any]]) -> list[str]:
    (meldpunt,) = [o for o in directory if o["id"] == "meldpunt"]
    return [k["kid"] for k in meldpunt["encryptionKeys"]["keys"]]


def _kept_kids(client: PartnerClient) -> list[str]:
    return _meldpunt_kids(client._kept_directory())


def test_the_partner_client_follows_encryption_and_token_signing_rotations(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    partner = enrol(own_gateway, "police", tmp_path)
    police = partner.client()
    first = police.submit_signal("BVH-1", "possible-victim", _person().subject(), {"s": "a"})
    assert first["status"] == "active"
    original = _kept_kids(police)

    signing = _rotate(own_gateway, "token-signing")
    once = _rotate(own_gateway, "encryption")
    # One rotation: the kept copy (still naming the previous key) is accepted as it is.
    second = police.submit_signal("BVH-2", "possible-victim", _person().subject(), {"s": "b"})
    assert second["status"] == "active" and _kept_kids(police) == original

    twice = _rotate(own_gateway, "encryption")
    assert _kept_kids(police) == original  # the client's copy is two rotations old
    time.sleep(TTL_SECONDS + 0.5)  # until the gateway's own directory cache has dropped it
    # The gateway no longer knows the copy's key: the client reads the directory again
    # and encrypts to the new key, without the caller noticing.
    third = police.submit_signal("BVH-3", "possible-victim", _person().subject(), {"s": "c"})
    assert third["status"] == "active"
    assert _kept_kids(police)[0] == twice["kid"] and once["kid"] in _kept_kids(police)

    # A client started after the token-signing rotation gets a token and submits too.
    fresh = partner.client()
    fourth = fresh.submit_signal("BVH-4", "possible-victim", _person().subject(), {"s": "d"})
    assert fourth["status"] == "active" and signing["kid"]


def test_a_blind_client_follows_a_pseudonym_rotation_and_still_matches(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    police = enrol(own_gateway, "police", tmp_path).client()
    care = enrol(own_gateway, "care", tmp_path).client(blind=True)
    meldpunt = enrol(own_gateway, "meldpunt", tmp_path, MELDPUNT_SCOPES).client()
    person = _person()
    before = police.submit_signal("BVH-1", "possible-victim", person.subject(), {"s": "a"})
    old_key = care._blind_keys.current_key()[0]

    rotated = _rotate(own_gateway, "pseudonym")
    assert rotated["retired"] == [old_key] and rotated["rows"] > 0
    # The running gateway evaluates under the new key without a restart ...
    assert care._blind_keys.current_key()[0] == rotated["kid"]
    after = care.submit_signal("JZ-1", "concern", person.subject(), {"s": "b"})
    # ... and the blind signal matches the plain one stored under the old key.
    found = [
        m
        for m in meldpunt.matches()
        if {s["id"] for s in m["signals"]} == {before["id"], after["id"]}
    ]
    assert len(found) == 1


def test_blind_match_keys_evaluated_before_a_pseudonym_rotation_are_moved_not_mislabelled(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    """The race: a blind partner evaluates its matchKeys, the pseudonym rotation runs,
    then the submission arrives. Its `keyId` names the old key, so the gateway moves the
    elements to the new key and the signal still matches; a keyId the gateway does not
    hold is refused with `oprf-key-changed` and the client evaluates again, once."""
    police = enrol(own_gateway, "police", tmp_path).client()
    care = enrol(own_gateway, "care", tmp_path).client(blind=True)
    meldpunt = enrol(own_gateway, "meldpunt", tmp_path, MELDPUNT_SCOPES).client()
    person, other = _person(), _person()
    before = police.submit_signal("BVH-1", "possible-victim", person.subject(), {"s": "a"})
    other_before = police.submit_signal("BVH-2", "possible-victim", other.subject(), {"s": "a"})
    stale = care._blind_keys.match_keys(person.subject())  # under the old key

    rotated = _rotate(own_gateway, "pseudonym")
    assert stale["keyId"] == rotated["retired"][0]
    evaluate = care._blind_keys.match_keys
    answers = iter([stale])
    care._blind_keys.match_keys = lambda subject: next(answers, None) or evaluate(subject)  # type: ignore[method-assign]
    late = care.submit_signal("JZ-1", "concern", person.subject(), {"s": "b"})

    # a keyId the gateway never held: refused with a hint, evaluated again, accepted
    calls: list[str] = []

    def forged_then_real(subject: dict[str, str]) -> dict[str, Any]:
        calls.append("evaluate")
        found = evaluate(subject)
        return {**found, "keyId": "no-such-key"} if len(calls) == 1 else found

    care._blind_keys.match_keys = forged_then_real  # type: ignore[method-assign]
    again = care.submit_signal("JZ-2", "concern", other.subject(), {"s": "c"})
    assert calls == ["evaluate", "evaluate"]

    pairs = [{s["id"] for s in m["signals"]} for m in meldpunt.matches()]
    assert {before["id"], late["id"]} in pairs
    assert {other_before["id"], again["id"]} in pairs


def test_an_unknown_match_keys_key_id_is_a_409_with_a_stable_type(
    own_gateway: LiveGateway, tmp_path: Path
) -> None:
    care = enrol(own_gateway, "care", tmp_path).client(blind=True)
    keys = care._blind_keys.match_keys(_person().subject())
    care._blind_keys.match_keys = lambda subject: {**keys, "keyId": "gone"}  # type: ignore[method-assign]
    try:
        care.submit_signal("JZ-9", "concern", _person().subject(), {"s": "x"})
    except ApiError as exc:
        assert exc.status == 409 and exc.slug == "oprf-key-changed"
        assert "GET /v1/oprf/key" in (exc.detail or "")
    else:
        raise AssertionError("an unknown keyId was accepted")
