"""Shares: re-encrypted for the receiver's current keys, fetched and decrypted by the partner;
four-eyes shares wait for a second coordinator; a refusal names the rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from gateway.cases.approvals import ApprovalNotPending
from gateway.cases.service import NewCase
from gateway.crypto.jwe import decrypt_for_recipient
from gateway.errors import InvalidInput, PolicyDenied
from gateway.matching.models import NotificationRow
from tests.cases.conftest import ANNA, BRAM, World

MELDPUNT_CASES = "cases:write"
PARTNER_SCOPES = "signals:write signals:read notifications:read directory:read shares:read"


def _case(world: World, *signal_ids: str) -> str:
    with world.session() as session:
        case = world.svc.cases.create(session, ANNA, NewCase("Casus", signal_ids=signal_ids))
        session.commit()
    return case.id


def _shares(world: World, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    response = world.client.get(f"/v1/shares{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_a_share_the_partner_fetches_and_decrypts(world: World) -> None:
    care = world.partner("jeugdhulp-twente", "care", PARTNER_SCOPES)
    police = world.partner("politie-oost", "police", PARTNER_SCOPES)
    sid = world.signal("roc-twente", "education", "possible-victim", "Zij (15) spijbelt sinds mei")
    case_id = _case(world, sid)
    with world.session() as session:
        outcome = world.svc.shares.share(
            session, ANNA, case_id, ["jeugdhulp-twente"], [sid], "care-referral"
        )
        session.commit()
    assert outcome.status == "shared" and outcome.share.status == "shared"

    body = _shares(world, world.token(care, "shares:read"))
    assert body["next"] is None
    (item,) = body["items"]
    assert set(item) == {"id", "caseId", "signals", "purpose", "createdAt"}
    assert (item["caseId"], item["purpose"]) == (case_id, "care-referral")
    (signal,) = item["signals"]
    assert (signal["id"], signal["category"]) == (sid, "possible-victim")
    envelope = signal["payload"]
    assert [envelope["header"]["kid"]] == [care.enc_private["kid"]]  # only the receiver's key
    assert decrypt_for_recipient(envelope, care.enc_private) == b"Zij (15) spijbelt sinds mei"

    # Another partner sees nothing of it; the receiver and the privacy officer are notified.
    assert _shares(world, world.token(police, "shares:read"))["items"] == []
    with world.session() as session:
        notes = session.execute(select(NotificationRow).where(NotificationRow.type == "share"))
        recipients = {n.recipient: json.loads(n.extra) for n in notes.scalars()}
    shared_extra = {"shareId": outcome.share.id, "signalIds": [sid]}
    assert recipients == {"jeugdhulp-twente": shared_extra, "privacy-officer": shared_extra}
    shared = [e for e in world.entries("case.share") if e["detail"].get("step") == "share"]
    assert shared[0]["policy"]["rule"] == "coordinator-shares-case"
    assert shared[0]["purpose"] == "care-referral"
    assert shared[0]["detail"]["organisations"] == ["jeugdhulp-twente"]
    listed = world.entries("notification.read")[-1]
    assert (
        listed["resource"]["type"] == "share" and listed["actor"]["organisation"] == "politie-oost"
    )
    # The receiver's feed says which share and which signal (the contract's `signalId`).
    feed = world.client.get("/v1/notifications", headers=world.token(care, "notifications:read"))
    (note,) = [n for n in feed.get_json()["items"] if n["type"] == "share"]
    assert (note["shareId"], note["signalId"], note["signalIds"]) == (outcome.share.id, sid, [sid])
    assert note["createdAt"] == item["createdAt"]


def test_the_share_api_for_the_meldpunt_system_and_paging(world: World) -> None:
    meldpunt = world.partner("meldpunt", "meldpunt", MELDPUNT_CASES)
    headers = world.token(meldpunt, MELDPUNT_CASES)
    care = world.partner("jeugdhulp-twente", "care", PARTNER_SCOPES)
    signals = [world.signal("politie-oost", "police", "concern", f"zorg {i}") for i in range(3)]
    case_id = _case(world, *signals)
    for sid in signals:
        response = world.client.post(
            f"/v1/cases/{case_id}/shares",
            json={
                "organisations": ["jeugdhulp-twente"],
                "signalIds": [sid],
                "purpose": "case-meeting",
            },
            headers=headers,
        )
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["status"] == "shared"
        created = response.get_json()["createdAt"]
    care_headers = world.token(care, "shares:read")
    first = _shares(world, care_headers, "?limit=2")
    second = _shares(world, care_headers, f"?limit=2&cursor={first['next']}")
    assert second["next"] is None
    got = [s["signals"][0]["id"] for s in first["items"] + second["items"]]
    assert got == signals
    assert second["items"][-1]["createdAt"] == created  # the moment the 201 named
    for bad in (
        {"organisations": [], "signalIds": [signals[0]], "purpose": "case-meeting"},
        {"organisations": ["nobody"], "signalIds": [signals[0]], "purpose": "case-meeting"},
        {"organisations": ["jeugdhulp-twente"], "signalIds": ["not-in-case"], "purpose": "x"},
        {"organisations": ["jeugdhulp-twente"], "signalIds": [signals[0]]},
    ):
        response = world.client.post(f"/v1/cases/{case_id}/shares", json=bad, headers=headers)
        assert response.status_code == 400, bad
    assert world.client.get("/v1/shares?cursor=zz", headers=care_headers).status_code == 400
    # A partner token without shares:read is refused by scope.
    no_scope = world.token(care, "signals:read")
    assert world.client.get("/v1/shares", headers=no_scope).status_code == 403


def test_a_refused_share_names_the_rule(world: World) -> None:
    meldpunt = world.partner("meldpunt", "meldpunt", MELDPUNT_CASES)
    headers = world.token(meldpunt, MELDPUNT_CASES)
    care = world.partner("jeugdhulp-twente", "care", PARTNER_SCOPES)
    sid = world.signal("politie-oost", "police", "possible-perpetrator", "ronselaar")
    case_id = _case(world, sid)
    response = world.client.post(
        f"/v1/cases/{case_id}/shares",
        json={"organisations": ["jeugdhulp-twente"], "signalIds": [sid], "purpose": "case-meeting"},
        headers=headers,
    )
    assert response.status_code == 403
    problem = response.get_json()
    assert problem["type"].endswith("/policy-denied")
    assert "deny:recipient-kind-not-allowed" in problem["detail"]
    assert problem["rule"] == "deny:recipient-kind-not-allowed"  # for a client to act on
    assert "possible-perpetrator" in problem["detail"]
    denied = world.entries("case.share")[-1]
    assert denied["outcome"] == "denied"
    assert denied["policy"]["rule"] == "deny:recipient-kind-not-allowed"
    assert _shares(world, world.token(care, "shares:read"))["items"] == []
    # A purpose outside the policy is refused too.
    with world.session() as session, pytest.raises(PolicyDenied, match="deny:purpose-not-listed"):
        world.svc.shares.share(session, ANNA, case_id, ["jeugdhulp-twente"], [sid], "nieuwsgierig")


def test_a_four_eyes_share_waits_for_a_second_coordinator(world: World) -> None:
    meldpunt = world.partner("meldpunt", "meldpunt", MELDPUNT_CASES)
    headers = world.token(meldpunt, MELDPUNT_CASES)
    police = world.partner("politie-oost", "police", PARTNER_SCOPES)
    sid = world.signal("gemeente-hengelo", "municipality", "possible-perpetrator", "pooier")
    case_id = _case(world, sid)
    response = world.client.post(
        f"/v1/cases/{case_id}/shares",
        json={"organisations": ["politie-oost"], "signalIds": [sid], "purpose": "case-meeting"},
        headers=headers,
    )
    assert response.status_code == 202, response.get_json()
    pending = response.get_json()
    assert pending["status"] == "pending" and pending["approvalId"]
    police_headers = world.token(police, "shares:read")
    assert _shares(world, police_headers)["items"] == []

    with world.session() as session:
        approval = world.svc.approvals.approve(session, ANNA, pending["approvalId"])
        session.commit()
    assert approval.status == "used"  # the approval was the share's one use
    (item,) = _shares(world, police_headers)["items"]
    assert item["id"] == pending["id"]
    envelope = item["signals"][0]["payload"]
    assert decrypt_for_recipient(envelope, police.enc_private) == b"pooier"
    steps = [e["detail"].get("step") for e in world.entries("case.share")]
    assert steps[-2:] == ["share.request", "approval.approve"]
    assert world.entries("case.share")[-1]["policy"]["rule"] == "meldpunt-system-shares-case"


def test_a_coordinator_cannot_approve_her_own_share(world: World) -> None:
    world.partner("politie-oost", "police")
    sid = world.signal("gemeente-hengelo", "municipality", "possible-perpetrator", "pooier")
    case_id = _case(world, sid)
    with world.session() as session:
        outcome = world.svc.shares.share(
            session, ANNA, case_id, ["politie-oost"], [sid], "case-meeting"
        )
        session.commit()
    assert outcome.status == "pending" and outcome.approval_id
    with world.session() as session:
        (waiting,) = world.svc.approvals.pending(session, BRAM)
        session.commit()
    assert (waiting.id, waiting.kind, waiting.purpose) == (
        outcome.approval_id,
        "case.share",
        "case-meeting",
    )
    with world.session() as session, pytest.raises(PolicyDenied, match="four-eyes-same-person"):
        world.svc.approvals.approve(session, ANNA, outcome.approval_id)
    with world.session() as session:
        refused = world.svc.approvals.refuse(
            session, BRAM, outcome.approval_id, "eerst casusoverleg"
        )
        session.commit()
    assert refused.status == "refused"
    with world.session() as session:
        assert [(s.id, s.status) for s in world.svc.shares.of_case(session, BRAM, case_id)] == [
            (outcome.share.id, "refused")
        ]
        assert world.svc.approvals.pending(session, BRAM) == []
        session.commit()
    with world.session() as session, pytest.raises(ApprovalNotPending):
        world.svc.approvals.approve(session, BRAM, outcome.approval_id)
    with world.session() as session, pytest.raises(InvalidInput):
        world.svc.approvals.request(session, ANNA, "case.share", outcome.share.id, "case-meeting")


def test_a_share_lists_unknown_receivers_and_signals_together(
    world: World, headers: dict[str, str]
) -> None:
    case_id = world.app.config["TEST_CASE_ID"]
    response = world.client.post(
        f"/v1/cases/{case_id}/shares",
        json={"organisations": ["nope"], "signalIds": ["x"], "purpose": "case-meeting"},
        headers=headers,
    )
    assert response.status_code == 400, response.get_json()
    problem = response.get_json()
    assert problem["type"].endswith("/problems/invalid-input")
    assert {e["pointer"] for e in problem["errors"]} == {"/organisations/0", "/signalIds/0"}
    # a list of the wrong form is not looked up; the other list still is
    response = world.client.post(
        f"/v1/cases/{case_id}/shares",
        json={"organisations": ["nope", "nope"], "signalIds": ["x"], "purpose": ""},
        headers=headers,
    )
    assert {e["pointer"] for e in response.get_json()["errors"]} == {
        "/organisations",
        "/signalIds/0",
        "/purpose",
    }
