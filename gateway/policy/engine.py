"""The decision engine: `decide(actor, action, resource, context) -> Decision`.

It fails closed. Only an allow rule in the policy file allows; everything else — an
unknown action, category, organisation kind or role, a missing or unlisted purpose, a
resource of another organisation, no rule at all — is a deny that names a `deny:…` rule
and a reason. Separation of duties is checked before any rule, so no rule can give an
admin or a privacy officer a payload. Every decision carries the policy digest, so the
audit entry it goes into says exactly which agreement decided.

Rules are indexed by action when the policy loads; a decision is a dictionary lookup and
a short loop (see `bench/bench_policy.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from gateway.actors import Actor
from gateway.policy.loader import LoadedPolicy
from gateway.policy.schema import (
    ACTIONS,
    ALWAYS_FORBIDDEN,
    OPTIONAL_ROLES,
    ROLES,
    Category,
    FourEyes,
    Policy,
    Rule,
)

Effect = Literal["allow", "deny"]
NEEDS_SECOND_APPROVAL: Final = "needs_second_approval"
NOTIFY: Final = "notify"


@dataclass(frozen=True, slots=True)
class Resource:
    """What an action is about: its type, the owning organisation and, where relevant, the
    category. Never an identifier of a person."""

    type: str
    id: str | None = None
    category: str | None = None
    organisation: str | None = None
    #: For a signal filed on the web: the user who filed it (a rule with
    #: `own_submission` allows only the actor's own); a list names the actor itself.
    submitter: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """The circumstances: the purpose the actor states, and for four-eyes actions the
    second person who approved."""

    purpose: str | None = None
    approver: Actor | None = None


NO_CONTEXT = Context()


@dataclass(frozen=True, slots=True)
class Obligation:
    """What the caller must still do before acting on an allow."""

    kind: Literal["needs_second_approval", "notify"]
    target: str  # the approver roles (comma-separated), or whom to notify

    def __str__(self) -> str:
        return self.kind if self.kind == NEEDS_SECOND_APPROVAL else f"{self.kind}:{self.target}"


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer. Fail closed: `allowed` only when a rule allows the action AND
    every approval it needs is present. `effect` is the rule's verdict ("allow" names the
    rule that would allow); a four-eyes action without its second person has effect
    "allow", `needs_approval` True and `allowed` False — decide again with the approver in
    `Context.approver` (see `PolicyEngine.decide_with_approval`)."""

    effect: Effect
    rule: str
    digest: str
    reason: str
    action: str
    obligations: tuple[Obligation, ...] = ()
    purpose: str | None = None
    processing_activity: str | None = None

    @property
    def allowed(self) -> bool:
        """May the actor act now? Never while an approval is missing."""
        return self.effect == "allow" and not self.needs_approval

    @property
    def needs_approval(self) -> bool:
        """A rule allows this, but only once a second person approves."""
        return any(o.kind == NEEDS_SECOND_APPROVAL for o in self.obligations)

    @property
    def needs_second_approval(self) -> bool:  # the older name
        return self.needs_approval

    def audit_fields(self) -> dict[str, Any]:
        """Keyword arguments for the caller's `AuditEvent`: rule, digest, purpose, activity."""
        return {
            "policy_rule": self.rule,
            "policy_digest": self.digest,
            "purpose": self.purpose,
            "processing_activity": self.processing_activity,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "effect": self.effect,
            "allowed": self.allowed,
            "rule": self.rule,
            "digest": self.digest,
            "reason": self.reason,
            "obligations": [str(o) for o in self.obligations],
        }


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A rule with its lists turned into sets once, at load."""

    rule: Rule
    id: str
    actor_type: str
    kinds: frozenset[str] | None
    roles: frozenset[str] | None
    scopes: frozenset[str]
    categories: frozenset[str] | None
    own_organisation: bool
    own_submission: bool
    category_submitter: bool
    purposes: frozenset[str] | None
    obligations: tuple[Obligation, ...]

    @classmethod
    def of(cls, rule: Rule) -> _Compiled:
        def opt(values: list[str] | None) -> frozenset[str] | None:
            return None if values is None else frozenset(values)

        return cls(
            rule=rule,
            id=rule.id,
            actor_type=rule.who.type,
            kinds=opt(rule.who.organisation_kinds),
            roles=opt(list(rule.who.roles) if rule.who.roles is not None else None),
            scopes=frozenset(rule.who.scopes),
            categories=opt(rule.categories),
            own_organisation=rule.own_organisation,
            own_submission=rule.own_submission,
            category_submitter=rule.category_submitter,
            purposes=opt(rule.purposes),
            obligations=tuple(Obligation(NOTIFY, o.notify) for o in rule.obligations),
        )

    def covers(self, actor: Actor, category: str | None) -> bool:
        if actor.type != self.actor_type:
            return False
        if self.roles is not None and actor.role not in self.roles:
            return False
        if self.kinds is not None and actor.organisation_kind not in self.kinds:
            return False
        if self.scopes and not self.scopes <= actor.scopes:
            return False
        return self.categories is None or category in self.categories


@dataclass
class PolicyEngine:
    loaded: LoadedPolicy
    _by_action: dict[str, tuple[_Compiled, ...]] = field(init=False, repr=False)
    _four_eyes: dict[str, tuple[FourEyes, ...]] = field(init=False, repr=False)
    _never: dict[str, frozenset[str]] = field(init=False, repr=False)
    _purpose_required: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        p = self.loaded.policy
        compiled = [_Compiled.of(rule) for rule in p.rules]
        self._by_action = {
            action: tuple(c for c in compiled if action in c.rule.actions) for action in ACTIONS
        }
        self._four_eyes = {
            action: tuple(f for f in p.four_eyes if action in f.actions) for action in ACTIONS
        }
        # an optional role the policy does not define stays out: its users get nothing
        self._never = {
            role: frozenset(p.roles[role].never if role in p.roles else ())
            | ALWAYS_FORBIDDEN.get(role, frozenset())
            for role in (*ROLES, *(r for r in OPTIONAL_ROLES if r in p.roles))
        }
        self._purpose_required = frozenset(p.purposes.required_for)

    @property
    def policy(self) -> Policy:
        return self.loaded.policy

    @property
    def digest(self) -> str:
        return self.loaded.digest

    def category(self, name: str) -> Category | None:
        return self.loaded.policy.categories.get(name)

    # -- matching ----------------------------------------------------------------------
    def tells_hit(self, organisation_kind: str | None) -> bool:
        """Is a partner of this kind told that its signal matched? (The coordinator always is.)"""
        found = self.policy.matching.submitters.get(organisation_kind or "")
        return found is not None and found.told_hit

    def reveals_organisations(self, organisation_kind: str | None) -> bool:
        """Is a partner of this kind also told which other organisations reported?"""
        found = self.policy.matching.submitters.get(organisation_kind or "")
        return found is not None and found.told_hit and found.reveals_organisations

    # -- decisions ---------------------------------------------------------------------
    def decide_with_approval(
        self,
        actor: Actor,
        action: str,
        resource: Resource,
        context: Context | None,
        approver: Actor,
    ) -> Decision:
        """Decide again with a second person's approval: allowed only when the approver is
        another person in one of the approver roles (else a `deny:four-eyes-…`)."""
        return self.decide(
            actor, action, resource, replace(context or NO_CONTEXT, approver=approver)
        )

    def _deny(self, action: str, rule: str, reason: str, **kw: Any) -> Decision:
        return Decision("deny", rule, self.loaded.digest, reason, action, **kw)

    def decide(
        self,
        actor: Actor,
        action: str,
        resource: Resource,
        context: Context | None = None,
    ) -> Decision:
        """Allow only what a rule allows; deny everything else, saying why."""
        ctx = context or NO_CONTEXT
        use = ACTIONS.get(action)
        if use is None:
            return self._deny(action, "deny:unknown-action", "the action is not in the policy")
        cat_name = resource.category
        category: Category | None = None
        if cat_name is not None:
            category = self.policy.categories.get(cat_name)
            if category is None:
                return self._deny(
                    action, "deny:unknown-category", "the category is not in the policy"
                )
        elif use == "required":
            return self._deny(action, "deny:category-required", f"{action} needs a category")
        extra: dict[str, Any] = {
            "purpose": ctx.purpose,
            "processing_activity": category.processing_activity if category else None,
        }

        if actor.type == "user":
            never = self._never.get(actor.role or "")
            if never is None:
                return self._deny(
                    action, "deny:no-matching-rule", "the role is not in the policy", **extra
                )
            if action in never:
                return self._deny(
                    action,
                    "deny:separation-of-duties",
                    f"the role {actor.role} may never do {action}",
                    **extra,
                )
        elif actor.type == "client":
            if actor.organisation_kind not in self.policy.organisation_kinds:
                return self._deny(
                    action,
                    "deny:unknown-organisation-kind",
                    "the organisation kind is not in the policy",
                    **extra,
                )
        else:
            return self._deny(
                action, "deny:no-matching-rule", f"no rule covers {actor.type} actors", **extra
            )

        failure: tuple[str, str] | None = None
        for rule in self._by_action[action]:
            if not rule.covers(actor, cat_name):
                continue
            why = self._condition_fails(rule, actor, action, resource, category, ctx)
            if why is not None:
                failure = failure or why
                continue
            return self._four_eyes_check(rule, actor, action, cat_name, ctx, extra)
        rule_id, reason = failure or ("deny:no-matching-rule", f"no rule allows {action}")
        return self._deny(action, rule_id, reason, **extra)

    def _condition_fails(
        self,
        rule: _Compiled,
        actor: Actor,
        action: str,
        resource: Resource,
        category: Category | None,
        ctx: Context,
    ) -> tuple[str, str] | None:
        if rule.own_organisation and (
            resource.organisation is None or resource.organisation != actor.organisation
        ):
            return "deny:not-own-organisation", f"{action}: not a resource of your organisation"
        if rule.own_submission and (resource.submitter is None or resource.submitter != actor.id):
            return "deny:not-own-submission", f"{action}: not a signal you filed yourself"
        if rule.category_submitter and (
            category is None or actor.organisation_kind not in category.submitters
        ):
            return (
                "deny:not-a-submitter",
                f"organisations of kind {actor.organisation_kind!r} may not {action} "
                f"in category {resource.category!r}",
            )
        if ctx.purpose is None:
            if action in self._purpose_required or rule.purposes is not None:
                return "deny:purpose-required", f"{action} requires a purpose"
        elif ctx.purpose not in self.policy.purposes.allowed or (
            rule.purposes is not None and ctx.purpose not in rule.purposes
        ):
            return "deny:purpose-not-listed", f"the purpose is not one listed for {action}"
        return None

    def _four_eyes_check(
        self,
        rule: _Compiled,
        actor: Actor,
        action: str,
        cat_name: str | None,
        ctx: Context,
        extra: dict[str, Any],
    ) -> Decision:
        obligations = list(rule.obligations)
        notes = []
        for four in self._four_eyes[action]:
            if four.categories is not None and cat_name not in four.categories:
                continue
            approver = ctx.approver
            if approver is None:
                obligations.insert(
                    0, Obligation(NEEDS_SECOND_APPROVAL, ",".join(four.approver_roles))
                )
                notes.append(f"not before a second person approves ({four.id})")
            elif approver.type == actor.type and approver.id == actor.id:
                return self._deny(
                    action,
                    "deny:four-eyes-same-person",
                    f"{four.id}: the approver must be a different person",
                    **extra,
                )
            elif approver.type != "user" or approver.role not in four.approver_roles:
                return self._deny(
                    action,
                    "deny:four-eyes-approver-role",
                    f"{four.id}: the approver must have role " + " or ".join(four.approver_roles),
                    **extra,
                )
            else:
                notes.append(f"approved by a second person ({four.id})")
        reason = f"allowed by rule {rule.id}" + "".join(f"; {n}" for n in notes)  # see .allowed
        return Decision(
            "allow",
            rule.id,
            self.loaded.digest,
            reason,
            action,
            obligations=tuple(obligations),
            **extra,
        )
