"""Purpose-bound payload reads; four eyes: request, approve by ANOTHER coordinator, one use."""

from __future__ import annotations

import pytest

from gateway.cases.approvals import ApprovalNotPending, ApprovalRequired
from gateway.errors import PolicyDenied
from tests.cases.conftest import ANNA, BRAM, World

PERPETRATOR_TEXT = "Man (30) haalt meisjes op bij het station"


def _perpetrator_signal(world: World) -> str:
    return world.signal("politie-oost", "police", "possible-perpetrator", PERPETRATOR_TEXT)


def test_a_plain_category_is_read_with_a_listed_purpose(world: World) -> None:
    sid = world.signal("zorg-twente", "care", "possible-victim", "meisje, 15")
    with world.session() as session:
        read = world.svc.payloads.read(session, ANNA, sid, "case-assessment")
        session.commit()
    assert read.content == b"meisje, 15"
    entry = world.entries("payload.read")[-1]
    assert entry["outcome"] == "success" and entry["purpose"] == "case-assessment"
    assert entry["policy"]["rule"] == "coordinator-reads-payload"
    assert "meisje" not in str(world.entries())

    with world.session() as session, pytest.raises(PolicyDenied, match="deny:purpose-not-listed"):
        world.svc.payloads.read(session, ANNA, sid, "nieuwsgierigheid")
    assert world.entries("payload.read")[-1]["policy"]["rule"] == "deny:purpose-not-listed"


def test_four_eyes_read_requested_by_one_approved_by_another_used_once(world: World) -> None:
    sid = _perpetrator_signal(world)
    payloads, approvals = world.svc.payloads, world.svc.approvals
    with world.session() as session, pytest.raises(ApprovalRequired):
        payloads.read(session, ANNA, sid, "case-meeting")
    refused_read = world.entries("payload.read")[-1]
    assert refused_read["outcome"] == "denied" and refused_read["purpose"] == "case-meeting"

    with world.session() as session:
        request = approvals.request(session, ANNA, "payload.read", sid, "case-meeting")
        session.commit()
    assert request.status == "pending" and request.requester == "user:anna"

    # One cannot approve one's own request: the engine names the four-eyes rule.
    with world.session() as session, pytest.raises(PolicyDenied, match="four-eyes-same-person"):
        approvals.approve(session, ANNA, request.id)
    with world.session() as session:
        approved = approvals.approve(session, BRAM, request.id)
        session.commit()
    assert approved.status == "approved" and approved.approver == "user:bram"

    # Bram's approval is for Anna's read, not his own, and not for another purpose.
    with world.session() as session, pytest.raises(ApprovalRequired):
        payloads.read(session, BRAM, sid, "case-meeting")
    with world.session() as session, pytest.raises(ApprovalRequired):
        payloads.read(session, ANNA, sid, "care-referral")
    with world.session() as session:
        read = payloads.read(session, ANNA, sid, "case-meeting")
        session.commit()
    assert read.content == PERPETRATOR_TEXT.encode()
    # ... and for one read only.
    with world.session() as session, pytest.raises(ApprovalRequired):
        payloads.read(session, ANNA, sid, "case-meeting")
    with world.session() as session, pytest.raises(ApprovalNotPending):
        approvals.approve(session, BRAM, request.id)

    entries = world.entries("payload.read")
    steps = [(e["detail"].get("step"), e["outcome"], e["actor"]["id"]) for e in entries]
    assert ("approval.request", "success", "anna") in steps
    assert ("approval.approve", "success", "bram") in steps
    assert ("read", "success", "anna") in steps
    assert all(e["purpose"] in {"case-meeting", "care-referral"} for e in entries)
    approve = next(e for e in entries if e["detail"].get("step") == "approval.approve")
    assert approve["policy"]["rule"] == "coordinator-reads-payload"
    assert approve["detail"]["requester"] == "user:anna"
    self_approval = [e for e in entries if e["policy"]["rule"] == "deny:four-eyes-same-person"]
    assert self_approval and self_approval[0]["actor"]["id"] == "anna"
    read_entry = next(e for e in entries if e["detail"].get("step") == "read")
    assert read_entry["detail"]["approval"] == request.id
    assert PERPETRATOR_TEXT not in str(world.entries())


def test_an_expired_approval_is_refused(world: World) -> None:
    sid = _perpetrator_signal(world)
    approvals = world.svc.approvals
    with world.session() as session:
        request = approvals.request(session, ANNA, "payload.read", sid, "case-meeting")
        approvals.approve(session, BRAM, request.id)
        session.commit()
    world.clock.advance(hours=25)
    with world.session() as session, pytest.raises(ApprovalRequired):
        world.svc.payloads.read(session, ANNA, sid, "case-meeting")
    # A request left pending past its time can no longer be approved either.
    with world.session() as session:
        stale = approvals.request(session, ANNA, "payload.read", sid, "case-meeting")
        session.commit()
    world.clock.advance(hours=25)
    with world.session() as session, pytest.raises(ApprovalNotPending):
        approvals.approve(session, BRAM, stale.id)


def test_a_refused_request_gives_no_read(world: World) -> None:
    sid = _perpetrator_signal(world)
    approvals = world.svc.approvals
    with world.session() as session:
        request = approvals.request(session, ANNA, "payload.read", sid, "safety-assessment")
        refused = approvals.refuse(session, BRAM, request.id, "geen acuut gevaar gemeld")
        session.commit()
    assert refused.status == "refused" and refused.reason == "geen acuut gevaar gemeld"
    with world.session() as session, pytest.raises(ApprovalRequired):
        world.svc.payloads.read(session, ANNA, sid, "safety-assessment")
    refusal = [
        e for e in world.entries("payload.read") if e["detail"].get("step") == "approval.refuse"
    ]
    assert refusal[0]["detail"]["reason"] == "geen acuut gevaar gemeld"
    assert refusal[0]["purpose"] == "safety-assessment"


def test_a_privacy_officer_can_neither_read_nor_approve(world: World) -> None:
    from gateway.actors import Actor

    fleur = Actor(type="user", id="fleur", role="privacy-officer")
    sid = _perpetrator_signal(world)
    with world.session() as session, pytest.raises(PolicyDenied, match="separation-of-duties"):
        world.svc.payloads.read(session, fleur, sid, "case-meeting")
    with world.session() as session:
        request = world.svc.approvals.request(session, ANNA, "payload.read", sid, "case-meeting")
        session.commit()
    with world.session() as session, pytest.raises(PolicyDenied, match="four-eyes-approver-role"):
        world.svc.approvals.approve(session, fleur, request.id)
