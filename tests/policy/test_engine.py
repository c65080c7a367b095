"""The engine fails closed, keeps duties separate and binds payload reads to a purpose."""

from __future__ import annotations

import pytest

from gateway.actors import Actor
from gateway.policy.cases import run_cases
from gateway.policy.engine import Context, PolicyEngine, Resource
from gateway.policy.loader import LoadedPolicy, parse_policy

COORDINATOR = Actor(type="user", id="anna", organisation="meldpunt", role="coordinator")
SECOND_COORDINATOR = Actor(type="user", id="bram", organisation="meldpunt", role="coordinator")
ADMIN = Actor(type="user", id="carla", organisation="meldpunt", role="admin")
PRIVACY_OFFICER = Actor(type="user", id="dirk", organisation="meldpunt", role="privacy-officer")


def client(kind: str, org: str | None = None, scopes: str = "signals:write") -> Actor:
    org = org or f"{kind}-1"
    return Actor(
        type="client",
        id=f"{org}-app",
        organisation=org,
        organisation_kind=kind,
        scopes=frozenset(scopes.split()),
    )


def payload(category: str) -> Resource:
    return Resource(type="signal", id="s-1", category=category, organisation="police-1")


def test_shipped_policy_passes_its_own_tests(engine: PolicyEngine) -> None:
    results = run_cases(engine)
    assert len(results) >= 20
    assert [r.case.name for r in results if not r.passed] == []


def test_a_failing_case_is_reported(policy_text: str) -> None:
    text = policy_text.replace(
        'expect: {effect: deny, rule: "deny:not-a-submitter"}',
        "expect: {effect: allow, rule: partner-submits-signal}",
    )
    [failed] = [r for r in run_cases(PolicyEngine(parse_policy(text))) if not r.passed]
    assert failed.case.name == "School mag geen mogelijke dader melden"
    assert "got deny by deny:not-a-submitter" in failed.failures[0]


# -- role boundaries ------------------------------------------------------------------------
@pytest.mark.parametrize("category", ["possible-victim", "possible-perpetrator", "concern"])
@pytest.mark.parametrize("purpose", [None, "case-assessment"])
def test_admin_cannot_read_payloads(
    engine: PolicyEngine, category: str, purpose: str | None
) -> None:
    decision = engine.decide(ADMIN, "payload.read", payload(category), Context(purpose=purpose))
    assert (decision.effect, decision.rule) == ("deny", "deny:separation-of-duties")


@pytest.mark.parametrize("category", ["possible-victim", "possible-perpetrator", "concern"])
def test_privacy_officer_cannot_read_payloads(engine: PolicyEngine, category: str) -> None:
    decision = engine.decide(
        PRIVACY_OFFICER, "payload.read", payload(category), Context(purpose="case-assessment")
    )
    assert (decision.effect, decision.rule) == ("deny", "deny:separation-of-duties")


def test_privacy_officer_reads_the_log_and_searches_subjects(engine: PolicyEngine) -> None:
    for action in ("audit.read", "audit.export", "subject.search"):
        decision = engine.decide(PRIVACY_OFFICER, action, Resource(type="audit-log"))
        assert decision.allowed and decision.rule == "privacy-officer-reviews-log"


def test_admin_manages_but_reads_no_signals(engine: PolicyEngine) -> None:
    for action in ("partner.manage", "user.manage", "key.manage"):
        assert engine.decide(ADMIN, action, Resource(type="organisation")).allowed
    for action in ("signal.read", "signal.list", "match.read", "case.share", "subject.search"):
        assert not engine.decide(ADMIN, action, Resource(type="signal")).allowed


def test_education_partner_is_not_told_hit(engine: PolicyEngine) -> None:
    assert engine.tells_hit("education") is False
    assert engine.reveals_organisations("education") is False


def test_default_policy_tells_nobody_but_the_coordinator(engine: PolicyEngine) -> None:
    assert engine.policy.matching.coordinator == "always"
    for kind in [*engine.policy.organisation_kinds, "commercial", None]:
        assert not engine.tells_hit(kind)
        assert not engine.reveals_organisations(kind)


def test_a_policy_may_tell_the_police_a_hit(policy_text: str) -> None:
    text = policy_text.replace(
        "police: {told_hit: false, reveals_organisations: false}",
        "police: {told_hit: true, reveals_organisations: false}",
    )
    engine = PolicyEngine(parse_policy(text))
    assert engine.tells_hit("police") and not engine.reveals_organisations("police")
    assert not engine.tells_hit("education")


# -- fail closed -----------------------------------------------------------------------------
def test_unknown_action_is_denied(engine: PolicyEngine) -> None:
    decision = engine.decide(COORDINATOR, "signal.destroy", Resource(type="signal"))
    assert (decision.effect, decision.rule) == ("deny", "deny:unknown-action")
    assert "signal.destroy" not in decision.reason  # never echo unknown input


def test_unknown_category_is_denied(engine: PolicyEngine) -> None:
    decision = engine.decide(client("police"), "signal.create", payload("999999990"))
    assert (decision.effect, decision.rule) == ("deny", "deny:unknown-category")
    assert "999999990" not in decision.reason


def test_category_is_required_where_the_action_needs_one(engine: PolicyEngine) -> None:
    decision = engine.decide(client("police"), "signal.create", Resource(type="signal"))
    assert decision.rule == "deny:category-required"


def test_unknown_role_and_actor_types_are_denied(engine: PolicyEngine) -> None:
    root = Actor(type="user", id="x", role="root")
    assert engine.decide(root, "policy.read", Resource(type="policy")).rule == (
        "deny:no-matching-rule"
    )
    for kind in ("system", "anonymous"):
        actor = Actor(type=kind, id="x")  # type: ignore[arg-type]
        assert not engine.decide(actor, "policy.read", Resource(type="policy")).allowed


def test_empty_rule_set_denies_everything(twente: LoadedPolicy) -> None:
    policy = twente.policy.model_copy(update={"rules": []})
    empty = PolicyEngine(LoadedPolicy(policy, {}, b"", "empty", "test"))
    decision = empty.decide(COORDINATOR, "policy.read", Resource(type="policy"))
    assert (decision.effect, decision.rule) == ("deny", "deny:no-matching-rule")


def test_partner_sees_only_its_own_signals(engine: PolicyEngine) -> None:
    care = client("care", "jeugdhulp")
    own = Resource(type="signal", category="concern", organisation="jeugdhulp")
    other = Resource(type="signal", category="concern", organisation="politie-oost")
    unknown_owner = Resource(type="signal", category="concern")
    assert engine.decide(care, "signal.read", own).allowed
    assert engine.decide(care, "signal.read", other).rule == "deny:not-own-organisation"
    assert engine.decide(care, "signal.withdraw", unknown_owner).rule == "deny:not-own-organisation"


@pytest.mark.parametrize(
    ("kind", "category", "allowed"),
    [
        ("police", "possible-perpetrator", True),
        ("education", "possible-perpetrator", False),
        ("care", "possible-perpetrator", False),
        ("education", "possible-victim", True),
        ("education", "concern", True),
    ],
)
def test_who_may_submit_which_category(
    engine: PolicyEngine, kind: str, category: str, allowed: bool
) -> None:
    decision = engine.decide(client(kind), "signal.create", payload(category))
    assert decision.allowed is allowed
    assert decision.rule == ("partner-submits-signal" if allowed else "deny:not-a-submitter")


def test_allow_carries_digest_purpose_and_processing_activity(engine: PolicyEngine) -> None:
    decision = engine.decide(
        COORDINATOR, "payload.read", payload("concern"), Context(purpose="care-referral")
    )
    assert decision.allowed and decision.digest == engine.digest
    assert decision.audit_fields() == {
        "policy_rule": "coordinator-reads-payload",
        "policy_digest": engine.digest,
        "purpose": "care-referral",
        "processing_activity": (
            "https://register.enschede.nl/verwerkingen/meldpunt-mensenhandel/zorgsignalen"
        ),
    }


# -- purpose binding and four eyes ----------------------------------------------------------
def test_payload_read_needs_a_listed_purpose(engine: PolicyEngine) -> None:
    victim = payload("possible-victim")
    assert engine.decide(COORDINATOR, "payload.read", victim).rule == "deny:purpose-required"
    assert engine.decide(
        COORDINATOR, "payload.read", victim, Context(purpose="curiosity")
    ).rule == ("deny:purpose-not-listed")
    assert engine.decide(
        COORDINATOR, "payload.read", victim, Context(purpose="safety-assessment")
    ).allowed


def test_perpetrator_payload_needs_a_second_coordinator(engine: PolicyEngine) -> None:
    perpetrator = payload("possible-perpetrator")
    alone = engine.decide(COORDINATOR, "payload.read", perpetrator, Context(purpose="case-meeting"))
    # Fail closed: a rule allows it, but not before a second coordinator approves.
    assert not alone.allowed and alone.needs_approval and alone.effect == "allow"
    approved = engine.decide(
        COORDINATOR,
        "payload.read",
        perpetrator,
        Context(purpose="case-meeting", approver=SECOND_COORDINATOR),
    )
    assert approved.allowed and not approved.needs_second_approval
    self_approved = engine.decide(
        COORDINATOR,
        "payload.read",
        perpetrator,
        Context(purpose="case-meeting", approver=COORDINATOR),
    )
    assert self_approved.rule == "deny:four-eyes-same-person"
    by_admin = engine.decide(
        COORDINATOR, "payload.read", perpetrator, Context(purpose="case-meeting", approver=ADMIN)
    )
    assert by_admin.rule == "deny:four-eyes-approver-role"


def test_victim_payload_needs_no_second_approval(engine: PolicyEngine) -> None:
    decision = engine.decide(
        COORDINATOR, "payload.read", payload("possible-victim"), Context(purpose="case-meeting")
    )
    assert decision.allowed and decision.obligations == ()


def test_sharing_a_case_notifies_the_privacy_officer(engine: PolicyEngine) -> None:
    decision = engine.decide(
        COORDINATOR, "case.share", Resource(type="case", id="c-1", category="possible-victim")
    )
    assert decision.allowed
    assert [str(o) for o in decision.obligations] == ["notify:privacy-officer"]
    perpetrator = engine.decide(
        COORDINATOR, "case.share", Resource(type="case", category="possible-perpetrator")
    )
    assert [str(o) for o in perpetrator.obligations] == [
        "needs_second_approval",
        "notify:privacy-officer",
    ]


def test_scopes_are_part_of_a_rule(engine: PolicyEngine) -> None:
    meldpunt = client("meldpunt", "meldpunt", scopes="signals:read")
    assert not engine.decide(meldpunt, "match.read", Resource(type="match")).allowed
    meldpunt = client("meldpunt", "meldpunt", scopes="cases:write")
    assert engine.decide(meldpunt, "match.read", Resource(type="match")).allowed
