"""The partner client's ordinary day against a live gateway: submit, match, read
notifications where the last run left off (two client instances, one state file),
withdraw, open a payload shared with it, and witness the log."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway.client import DecryptionError, PartnerClient
from gateway.crypto.jwe import encrypt_for_recipients
from gateway.demo.people import Person, people
from tests.client.conftest import MELDPUNT_SCOPES, Enrolled, enrol
from tests.integration.live import LiveGateway


def _person() -> Person:
    return people(1, seed=random.randrange(2**32))[0]


def _match_of(meldpunt: PartnerClient, signal_ids: set[str]) -> dict[str, Any]:
    found = [m for m in meldpunt.matches() if {s["id"] for s in m["signals"]} == signal_ids]
    assert len(found) == 1, f"no single match holds {signal_ids}"
    return found[0]


@pytest.fixture
def partners(shared_gateway: LiveGateway, tmp_path: Path) -> dict[str, Enrolled]:
    return {
        "police": enrol(shared_gateway, "police", tmp_path),
        "care": enrol(shared_gateway, "care", tmp_path),
        "meldpunt": enrol(shared_gateway, "meldpunt", tmp_path, MELDPUNT_SCOPES),
    }


def test_submit_match_notifications_withdraw_and_verify(
    partners: dict[str, Enrolled], tmp_path: Path
) -> None:
    police_state = tmp_path / "police.json"
    police = partners["police"].client(state_path=police_state)
    care = partners["care"].client()
    coordinator_state = tmp_path / "meldpunt.json"
    partners["meldpunt"].client(state_path=coordinator_state).notifications()  # catch up

    first = _person()
    by_police = police.submit_signal("BVH-1", "possible-victim", first.subject(), {"s": "a"})
    by_care = care.submit_signal("JZ-1", "concern", first.subject(), {"s": "b"})
    assert by_police["status"] == by_care["status"] == "active"
    first_match = _match_of(partners["meldpunt"].client(), {by_police["id"], by_care["id"]})

    # one instance reads the new notifications; the next, sharing its state file, has none
    reader = partners["meldpunt"].client(state_path=coordinator_state)
    news = reader.notifications()
    assert {n["matchId"] for n in news} == {first_match["id"]}
    assert "match" in {n["type"] for n in news}
    again = partners["meldpunt"].client(state_path=coordinator_state)
    assert again.notifications() == []

    second = _person()
    by_police_2 = police.submit_signal("BVH-2", "possible-victim", second.subject(), {"s": "c"})
    by_care_2 = care.submit_signal("JZ-2", "concern", second.subject(with_bsn=False), {"s": "d"})
    second_match = _match_of(partners["meldpunt"].client(), {by_police_2["id"], by_care_2["id"]})
    later = again.notifications()
    assert {n["matchId"] for n in later} == {second_match["id"]}
    assert partners["meldpunt"].client(state_path=coordinator_state).notifications() == []
    # with small pages the cursor moves page by page, and nothing is repeated or lost
    everything = partners["meldpunt"].client().notifications(limit=2)
    assert {n["id"] for n in news + later} <= {n["id"] for n in everything}
    assert len({n["id"] for n in everything}) == len(everything)

    # the default policy tells partners nothing about matches
    assert police.notifications() == [] and care.notifications() == []

    withdrawn = police.withdraw(by_police["id"])
    assert withdrawn["status"] == "withdrawn"
    assert police.signal(by_police["id"])["status"] == "withdrawn"

    # the state file carried the receipts across instances; all of them are in the log
    police = partners["police"].client(state_path=police_state)
    actions = [r.action for r in police.state.receipts]
    assert actions == ["signal.create", "signal.create", "signal.withdraw"]
    report = police.verify()
    assert report.checkpoint_verified
    assert report.receipts_verified == 3 and report.receipts_pending == 0
    assert all(r.index is not None for r in police.state.receipts)
    assert report.consistent_with_previous is None  # its first look
    report = partners["police"].client(state_path=police_state).verify()
    assert report.consistent_with_previous is True and report.receipts_verified == 3
    saved = json.loads(police_state.read_text())
    assert saved["checkpoint"]["size"] == report.checkpoint_size


def test_decrypts_a_payload_shared_with_it(partners: dict[str, Enrolled]) -> None:
    police = partners["police"].client()
    care = partners["care"].client()
    plaintext = json.dumps({"summary": "Zorgen over uitbuiting", "contact": "wijkagent"}).encode()
    recipients = [*police.recipient_keys("possible-victim"), partners["police"].encryption_public]
    envelope = encrypt_for_recipients(plaintext, recipients)
    created = police.request(
        "POST",
        "/signals",
        json_body={
            "reference": "BVH-3",
            "category": "possible-victim",
            "subject": _person().subject(),
            "payload": envelope,
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert created.status_code == 201  # the gateway took it: the meldpunt's copy opens

    assert police.decrypt(envelope) == plaintext
    with pytest.raises(DecryptionError):
        care.decrypt(envelope)  # not a recipient
    with pytest.raises(ValueError, match="without an encryption key"):
        signing_only = partners["police"].folder / "signing.jwk.json"
        PartnerClient(police.issuer, police.client_id, signing_only).decrypt(envelope)


def test_a_blind_submission_matches_a_plain_one(partners: dict[str, Enrolled]) -> None:
    """`PartnerClient(..., blind=True)` (what `ketenpoort partner submit --blind` uses)
    sends only `matchKeys`; its signal matches a plain one about the same person."""
    person = _person()
    police = partners["police"].client()
    plain = police.submit_signal("BVH-3", "possible-victim", person.subject(), {"s": "e"})
    care = partners["care"].client()
    care.blind = True
    blind = care.submit_signal("JZ-3", "concern", person.subject(), {"s": "f"})
    assert blind["status"] == "active" and "name_dob" in blind["linkageKeys"]
    match = _match_of(partners["meldpunt"].client(), {plain["id"], blind["id"]})
    assert match["tier"] == "strong" and match["state"] == "new"
