"""Property tests: the engine never allows what no rule allows.

Two oracles. The weak one looks only at the rule the engine names: it must exist, list the
action and cover the actor's type. The strong one restates the policy semantics from the
format's documentation, independently of the engine's indexes, and computes every rule
that allows a request; the engine's allow must be one of them, and when none exists the
engine must deny. Random rule sets are used as well as the shipped policy, without the
load-time checks, so that the engine's own defences (separation of duties, unknown
names) are tested on their own.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.actors import Actor
from gateway.policy.engine import Context, PolicyEngine, Resource
from gateway.policy.loader import LoadedPolicy, load_policy
from gateway.policy.schema import ACTIONS, ALWAYS_FORBIDDEN, Policy, Rule
from tests.policy.conftest import TWENTE

BASE = load_policy(TWENTE)
KINDS = [*BASE.policy.organisation_kinds, "commercial"]
CATEGORIES = [*BASE.policy.categories, "unknown-category"]
ROLES = ["coordinator", "privacy-officer", "admin", "root"]
ORGS = ["police-1", "care-1", "meldpunt", "school-1"]
SCOPES = ["signals:write", "signals:read", "cases:write", "audit:read", "directory:read"]
PURPOSES = [*BASE.policy.purposes.allowed, "curiosity"]
ACTION_NAMES = [*ACTIONS, "signal.destroy", "payload.export"]

actors = st.builds(
    Actor,
    type=st.sampled_from(["client", "user", "system", "anonymous"]),
    id=st.sampled_from(["a", "b", "c"]),
    organisation=st.none() | st.sampled_from(ORGS),
    organisation_kind=st.none() | st.sampled_from(KINDS),
    role=st.none() | st.sampled_from(ROLES),
    scopes=st.frozensets(st.sampled_from(SCOPES)),
)
resources = st.builds(
    Resource,
    type=st.sampled_from(["signal", "case", "match", "policy"]),
    id=st.none() | st.just("r-1"),
    category=st.none() | st.sampled_from(CATEGORIES),
    organisation=st.none() | st.sampled_from(ORGS),
)
contexts = st.builds(
    Context,
    purpose=st.none() | st.sampled_from(PURPOSES),
    approver=st.none() | actors,
)
action_names = st.sampled_from(ACTION_NAMES) | st.text(max_size=12)


def _maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | st.lists(values, min_size=1, max_size=3, unique=True)


rules = st.builds(
    lambda i, who_type, kinds, roles, scopes, actions, cats, own, sub, purposes: Rule(
        id=f"r{i}",
        description="random",
        who={"type": who_type, "organisation_kinds": kinds, "roles": roles, "scopes": scopes},
        actions=actions,
        categories=cats,
        own_organisation=own,
        category_submitter=sub,
        purposes=purposes,
    ),
    st.integers(0, 10_000),
    st.sampled_from(["client", "user"]),
    _maybe(st.sampled_from(KINDS[:-1])),
    _maybe(st.sampled_from(ROLES[:-1])),
    st.lists(st.sampled_from(SCOPES), max_size=2, unique=True),
    st.lists(st.sampled_from(list(ACTIONS)), min_size=1, max_size=4, unique=True),
    _maybe(st.sampled_from(CATEGORIES[:-1])),
    st.booleans(),
    st.booleans(),
    _maybe(st.sampled_from(PURPOSES[:-1])),
)


def engine_with(rule_list: list[Rule]) -> PolicyEngine:
    policy = BASE.policy.model_copy(update={"rules": rule_list})
    return PolicyEngine(LoadedPolicy(policy, {}, b"", "random", "hypothesis"))


def allowing_rules(
    policy: Policy, actor: Actor, action: str, res: Resource, ctx: Context
) -> set[str]:
    """Every rule that allows the request, restated from the format's documentation."""
    if action not in ACTIONS:
        return set()
    category = policy.categories.get(res.category) if res.category is not None else None
    if res.category is not None and category is None:
        return set()
    if category is None and ACTIONS[action] == "required":
        return set()
    if actor.type == "user":
        if actor.role not in policy.roles:
            return set()
        never = set(policy.roles[actor.role].never) | ALWAYS_FORBIDDEN.get(actor.role, set())  # type: ignore[index]
        if action in never:
            return set()
    elif actor.type == "client":
        if actor.organisation_kind not in policy.organisation_kinds:
            return set()
    else:
        return set()
    found = set()
    for rule in policy.rules:
        who = rule.who
        if action not in rule.actions or who.type != actor.type:
            continue
        if who.roles is not None and actor.role not in who.roles:
            continue
        if (
            who.organisation_kinds is not None
            and actor.organisation_kind not in who.organisation_kinds
        ):
            continue
        if not set(who.scopes) <= actor.scopes:
            continue
        if rule.categories is not None and res.category not in rule.categories:
            continue
        if rule.own_organisation and (
            res.organisation is None or res.organisation != actor.organisation
        ):
            continue
        if rule.category_submitter and (
            category is None or actor.organisation_kind not in category.submitters
        ):
            continue
        needs_purpose = action in policy.purposes.required_for or rule.purposes is not None
        if ctx.purpose is None and needs_purpose:
            continue
        if ctx.purpose is not None and (
            ctx.purpose not in policy.purposes.allowed
            or (rule.purposes is not None and ctx.purpose not in rule.purposes)
        ):
            continue
        found.add(rule.id)
    return found


def check(engine: PolicyEngine, actor: Actor, action: str, res: Resource, ctx: Context) -> None:
    decision = engine.decide(actor, action, res, ctx)
    allowed_by = allowing_rules(engine.policy, actor, action, res, ctx)
    assert decision.digest == engine.digest
    if decision.allowed:
        rule = next(r for r in engine.policy.rules if r.id == decision.rule)  # weak oracle
        assert action in rule.actions and rule.who.type == actor.type
        assert decision.rule in allowed_by  # strong oracle
    elif decision.needs_approval:  # a rule allows it once a second person approves
        assert decision.effect == "allow" and decision.rule in allowed_by
        assert ctx.approver is None
    else:
        assert decision.rule.startswith("deny:") and decision.reason
        if not decision.rule.startswith("deny:four-eyes"):
            assert allowed_by == set(), (decision, allowed_by)
    if actor.type == "user" and actor.role in ALWAYS_FORBIDDEN and action == "payload.read":
        assert not decision.allowed


@settings(max_examples=400, deadline=None)
@given(actor=actors, action=action_names, res=resources, ctx=contexts)
def test_shipped_policy_allows_only_what_a_rule_allows(
    actor: Actor, action: str, res: Resource, ctx: Context
) -> None:
    check(PolicyEngine(BASE), actor, action, res, ctx)


@settings(max_examples=300, deadline=None)
@given(
    rule_list=st.lists(rules, max_size=6, unique_by=lambda r: r.id),
    actor=actors,
    action=action_names,
    res=resources,
    ctx=contexts,
)
def test_random_rule_sets_allow_only_what_a_rule_allows(
    rule_list: list[Rule], actor: Actor, action: str, res: Resource, ctx: Context
) -> None:
    check(engine_with(rule_list), actor, action, res, ctx)


@settings(max_examples=200, deadline=None)
@given(actor=actors, action=action_names, res=resources, ctx=contexts)
def test_no_rules_no_allow(actor: Actor, action: str, res: Resource, ctx: Context) -> None:
    assert not engine_with([]).decide(actor, action, res, ctx).allowed


GRANT_ALL_TO_USERS = Rule(
    id="grant-all",
    description="a careless rule that gives every user everything",
    who={"type": "user"},
    actions=list(ACTIONS),
)


@settings(max_examples=200, deadline=None)
@given(
    rule_list=st.lists(rules, max_size=4, unique_by=lambda r: r.id),
    role=st.sampled_from(["admin", "privacy-officer"]),
    res=resources,
    purpose=st.sampled_from(PURPOSES[:-1]),
)
def test_no_rule_gives_admin_or_privacy_officer_a_payload(
    rule_list: list[Rule], role: str, res: Resource, purpose: str
) -> None:
    engine = engine_with([GRANT_ALL_TO_USERS, *rule_list])
    actor = Actor(type="user", id="x", organisation="meldpunt", role=role)
    decision = engine.decide(actor, "payload.read", res, Context(purpose=purpose))
    assert not decision.allowed
    check(engine, actor, "payload.read", res, Context(purpose=purpose))
