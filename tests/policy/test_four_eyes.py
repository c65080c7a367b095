"""Fail closed on four eyes: no action that needs a second person is ever allowed by one.

Over the shipped policy, and over random policies where any action and category may
need four eyes and a careless rule grants everything: whenever a decision is
`allowed` for an action a four-eyes rule covers, a second, different person in one of
that rule's approver roles approved it. Without an approver such a decision is never
allowed; it says `needs_approval`, and deciding again with a proper approver allows it.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.actors import Actor
from gateway.policy.engine import Context, PolicyEngine, Resource
from gateway.policy.loader import LoadedPolicy
from gateway.policy.schema import ACTIONS, FourEyes, Rule
from tests.policy.test_properties import BASE, actors, contexts, resources

CATEGORIES = list(BASE.policy.categories)
ROLES = ["coordinator", "privacy-officer", "admin"]

four_eyes_rules = st.lists(
    st.builds(
        lambda i, actions, categories, roles: FourEyes(
            id=f"four-{i}",
            description="random",
            actions=actions,
            categories=categories,
            approver_roles=roles,
        ),
        st.integers(0, 10_000),
        st.lists(st.sampled_from(list(ACTIONS)), min_size=1, max_size=4, unique=True),
        st.none() | st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True),
        st.lists(st.sampled_from(ROLES), min_size=1, max_size=2, unique=True),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda f: f.id,
)

GRANT_ALL = [
    Rule(id="grant-users", description="careless", who={"type": "user"}, actions=list(ACTIONS)),
    Rule(id="grant-clients", description="careless", who={"type": "client"}, actions=list(ACTIONS)),
]


def covering(engine: PolicyEngine, action: str, category: str | None) -> list[FourEyes]:
    return [
        f
        for f in engine.policy.four_eyes
        if action in f.actions and (f.categories is None or category in f.categories)
    ]


def same_person(a: Actor, b: Actor) -> bool:
    return a.type == b.type and a.id == b.id


def check(engine: PolicyEngine, actor: Actor, action: str, res: Resource, ctx: Context) -> None:
    decision = engine.decide(actor, action, res, ctx)
    needed = covering(engine, action, res.category)
    if not needed or decision.effect == "deny":
        return
    # A rule allows the action and four eyes are required.
    approver = ctx.approver
    if approver is None:
        assert not decision.allowed and decision.needs_approval, decision
        return
    if decision.allowed:
        assert not same_person(approver, actor)
        assert approver.type == "user"
        assert all(approver.role in f.approver_roles for f in needed)


@settings(max_examples=400, deadline=None)
@given(actor=actors, action=st.sampled_from(list(ACTIONS)), res=resources, ctx=contexts)
def test_shipped_policy_never_lets_one_person_do_a_four_eyes_action(
    actor: Actor, action: str, res: Resource, ctx: Context
) -> None:
    check(PolicyEngine(BASE), actor, action, res, ctx)


@settings(max_examples=400, deadline=None)
@given(
    four=four_eyes_rules,
    actor=actors,
    action=st.sampled_from(list(ACTIONS)),
    res=resources,
    ctx=contexts,
)
def test_random_four_eyes_rules_never_let_one_person_act(
    four: list[FourEyes], actor: Actor, action: str, res: Resource, ctx: Context
) -> None:
    policy = BASE.policy.model_copy(update={"rules": GRANT_ALL, "four_eyes": four})
    engine = PolicyEngine(LoadedPolicy(policy, {}, b"", "random", "hypothesis"))
    check(engine, actor, action, res, ctx)
    alone = engine.decide(actor, action, res, Context(purpose=ctx.purpose))
    if covering(engine, action, res.category) and alone.effect == "allow":
        assert not alone.allowed
        self_approved = engine.decide_with_approval(actor, action, res, ctx, approver=actor)
        assert not self_approved.allowed


def test_a_second_coordinator_turns_needs_approval_into_allowed() -> None:
    engine = PolicyEngine(BASE)
    anna = Actor(type="user", id="anna", organisation="meldpunt", role="coordinator")
    bram = Actor(type="user", id="bram", organisation="meldpunt", role="coordinator")
    resource = Resource(type="signal", category="possible-perpetrator", organisation="police-1")
    context = Context(purpose="case-meeting")
    alone = engine.decide(anna, "payload.read", resource, context)
    assert (alone.allowed, alone.needs_approval) == (False, True)
    assert alone.as_json()["allowed"] is False
    approved = engine.decide_with_approval(anna, "payload.read", resource, context, approver=bram)
    assert approved.allowed and not approved.needs_approval
    by_herself = engine.decide_with_approval(anna, "payload.read", resource, context, anna)
    assert not by_herself.allowed and by_herself.rule == "deny:four-eyes-same-person"


def test_authorize_refuses_an_action_still_waiting_for_approval() -> None:
    """The view helper treats `needs_approval` as a refusal (403), not as an allow."""
    from gateway.policy.service import policy_denied

    engine = PolicyEngine(BASE)
    anna = Actor(type="user", id="anna", organisation="meldpunt", role="coordinator")
    pending = engine.decide(
        anna,
        "case.share",
        Resource(type="case", category="possible-perpetrator"),
        Context(),
    )
    assert pending.needs_approval and not pending.allowed
    problem = policy_denied(pending)
    assert problem.status == 403 and "second person's approval" in problem.detail


people = st.builds(
    Actor,
    type=st.just("user"),
    id=st.sampled_from(["anna", "bram", "chris"]),
    organisation=st.just("meldpunt"),
    role=st.sampled_from(ROLES),
)


@settings(max_examples=300, deadline=None)
@given(
    actor=people,
    approver=st.none() | people,
    action=st.sampled_from(["payload.read", "case.share"]),
    category=st.sampled_from(CATEGORIES),
    purpose=st.none() | st.sampled_from(list(BASE.policy.purposes.allowed)),
)
def test_shipped_policy_people_at_the_meldpunt(
    actor: Actor, approver: Actor | None, action: str, category: str, purpose: str | None
) -> None:
    """The shipped four-eyes rules, with the people they are about (coordinators)."""
    resource = Resource(type="signal", id="s-1", category=category, organisation="police-1")
    check(PolicyEngine(BASE), actor, action, resource, Context(purpose, approver))
