"""The policy format: pydantic models of the data-sharing agreement (samenwerkingsconvenant).

The models check each field on its own; `semantic_errors` then checks what only the whole
document can tell (every reference points at something defined, separation of duties
holds, the meldpunt receives every category). Both report a location, a path of keys, so
that the loader can name the YAML line. The JSON Schema in `policies/schema.json` is
exported from these models (`ketenpoort policy schema policies/schema.json`); a test
keeps it current.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

#: The actions the gateway asks the policy about; the other packages call `decide` with these.
#: Value: whether the resource must name a category ("required"), may ("optional") or not.
CategoryUse = Literal["required", "optional", "none"]
ACTIONS: dict[str, CategoryUse] = {
    "signal.create": "required",
    "signal.read": "optional",
    "signal.list": "none",
    "signal.withdraw": "optional",
    "notification.read": "none",
    "directory.read": "none",
    "policy.read": "none",
    "match.read": "none",
    "case.write": "optional",
    "case.share": "optional",
    "payload.read": "required",
    "audit.read": "none",
    "audit.export": "none",
    "subject.search": "none",
    "oprf.evaluate": "none",
    "partner.manage": "none",
    "user.manage": "none",
    "key.manage": "none",
    "figures.read": "none",
}
#: The roles every policy must define; `professional` (a person at a partner without a
#: connected system, using the web intake) is optional: without it professionals may do
#: nothing.
ROLES = ("coordinator", "privacy-officer", "admin")
OPTIONAL_ROLES = ("professional",)
#: Separation of duties the design fixes, whatever a policy file says. A professional
#: never learns of matches or searches a person: the gateway is no oracle for partners.
ALWAYS_FORBIDDEN: dict[str, frozenset[str]] = {
    "admin": frozenset({"payload.read"}),
    "privacy-officer": frozenset({"payload.read"}),
    "professional": frozenset({"match.read", "subject.search", "audit.export"}),
}
#: Rule ids the engine itself uses for the denials no rule in the file gives.
DENY_RULES = frozenset(
    {
        "deny:unknown-action",
        "deny:unknown-category",
        "deny:category-required",
        "deny:unknown-organisation-kind",
        "deny:separation-of-duties",
        "deny:no-matching-rule",
        "deny:not-own-organisation",
        "deny:not-own-submission",
        "deny:not-a-submitter",
        "deny:purpose-required",
        "deny:purpose-not-listed",
        "deny:four-eyes-same-person",
        "deny:four-eyes-approver-role",
    }
)

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", max_length=64)]
ActionName = Literal[
    "signal.create",
    "signal.read",
    "signal.list",
    "signal.withdraw",
    "notification.read",
    "directory.read",
    "policy.read",
    "match.read",
    "case.write",
    "case.share",
    "payload.read",
    "audit.read",
    "audit.export",
    "subject.search",
    "oprf.evaluate",
    "partner.manage",
    "user.manage",
    "key.manage",
    "figures.read",
]
RoleName = Literal["coordinator", "privacy-officer", "admin", "professional"]
#: The key families of `gateway.pseudonyms.matchkeys.LINKAGE_FAMILIES` (a test keeps
#: the two in step): a category lists those it links on.
LinkageKey = Literal[
    "bsn",
    "name_dob",
    "swap_dob",
    "given_dob",
    "names_year",
    "names",
    "init_dob",
    "phon_dob",
    "del_dob",
    "part_dob",
    "dm_swap",
    "xname_dob",
    "names_del",
    "fgi_dob",
    "names_ym",
]
HttpsUri = Annotated[str, StringConstraints(pattern=r"^https://[^\s/?#]+(/[^\s]*)?$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Scope = Annotated[str, StringConstraints(pattern=r"^[a-z]+:[a-z]+$")]


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a covenant must not silently loosen it."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Controller(Strict):
    name: Text = Field(description="Verwerkingsverantwoordelijke (AVG art. 4(7)).")
    organisation: Name = Field(
        description="Organisation id of the meldpunt; a required recipient of every category."
    )
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    register_uri: HttpsUri = Field(
        alias="register", description="The register of processing activities (AVG art. 30)."
    )
    contact: Text | None = Field(default=None, description="Privacy officer (FG) contact.")


class OrganisationKind(Strict):
    description: Text


class LegalBasis(Strict):
    ref: Text = Field(description='The article, e.g. "AVG art. 6 lid 1 sub e".')
    note: Text = Field(description="Why it applies, in words a privacy officer uses.")


class Disclosure(Strict):
    """What a data-subject report may hand out of a category without a closer look.

    An item that needs review is not left out of the report: it is marked, with the
    ground, for the privacy officer to decide on (AVG art. 23, Wpg art. 25-27).
    """

    review: bool = Field(
        default=False, description="Every item of this category needs review before disclosure."
    )
    review_submitters: list[Name] = Field(
        default_factory=list,
        description="Organisation kinds whose signals in this category need review.",
    )
    ground: Text = Field(description="Why disclosure may be restricted (the article).")


class Category(Strict):
    description: Text
    legal_basis: list[LegalBasis] = Field(min_length=1)
    purpose: Text
    processing_activity: HttpsUri = Field(
        description="URI of the processing activity in the controller's register (LDV)."
    )
    retention_days: int = Field(ge=1, le=730, description="Signals expire after this many days.")
    required_recipients: list[Name] = Field(
        min_length=1, description="Organisation ids that must be able to decrypt the payload."
    )
    optional_recipient_kinds: list[Name] = Field(default_factory=list)
    linkage_keys: list[LinkageKey] = Field(min_length=1)
    submitters: list[Name] = Field(
        min_length=1, description="Organisation kinds that may submit signals in this category."
    )
    disclosure: Disclosure | None = Field(
        default=None,
        description="Restrictions on handing items out in a data-subject report (absent: none).",
    )
    test: bool = Field(
        default=False,
        description=(
            "Reserved for conformance tests (`ketenpoort partner check`): a signal here is "
            "checked, pseudonymised and audited like any other and then erased at once, "
            "before the response: no payload, pseudonym or idempotency record is kept, it "
            "is never matched and no one is notified. The audit entry stays, without "
            "subject references."
        ),
    )


class MatchDisclosure(Strict):
    told_hit: bool = Field(description="Is the submitting partner told that there is a match?")
    reveals_organisations: bool = Field(
        default=False, description="Is it also told which other organisations reported?"
    )


class Matching(Strict):
    coordinator: Literal["always"] = Field(description="The coordinator always learns of a match.")
    submitters: dict[Name, MatchDisclosure] = Field(
        default_factory=dict,
        description="Per submitting organisation kind; a kind not listed is told nothing.",
    )


class Role(Strict):
    description: Text
    never: list[ActionName] = Field(
        default_factory=list,
        description="Actions this role may never perform, whatever a rule says.",
    )


class Purposes(Strict):
    required_for: list[ActionName] = Field(
        min_length=1, description="Actions that must name one of the allowed purposes."
    )
    allowed: dict[Name, Text] = Field(min_length=1, description="Purpose id -> description.")


class Who(Strict):
    type: Literal["client", "user"]
    organisation_kinds: list[Name] | None = Field(
        default=None, description="Clients: the kinds this rule covers (absent: every kind)."
    )
    roles: list[RoleName] | None = Field(default=None, description="Users: the roles covered.")
    scopes: list[Scope] = Field(
        default_factory=list, description="Clients: scopes the token must carry."
    )


class Notify(Strict):
    notify: Name = Field(description="A role or organisation id to notify.")


class Rule(Strict):
    id: Name
    description: Text
    who: Who
    actions: list[ActionName] = Field(min_length=1)
    categories: list[Name] | None = Field(
        default=None, description="Categories covered (absent: every category, or none needed)."
    )
    own_organisation: bool = Field(
        default=False, description="Only resources of the actor's own organisation."
    )
    own_submission: bool = Field(
        default=False,
        description=(
            "Users: only signals the actor filed itself (a professional's own web-intake "
            "signals, not those of colleagues)."
        ),
    )
    category_submitter: bool = Field(
        default=False, description="The actor's organisation kind must be a category submitter."
    )
    purposes: list[Name] | None = Field(
        default=None, description="Purposes this rule accepts (absent: every allowed purpose)."
    )
    obligations: list[Notify] = Field(default_factory=list)


class FourEyes(Strict):
    id: Name
    description: Text
    actions: list[ActionName] = Field(min_length=1)
    categories: list[Name] | None = None
    approver_roles: list[RoleName] = Field(min_length=1)


AlertKind = Literal[
    "payload-reads-above-usual",
    "reads-outside-office-hours",
    "refusals-per-client",
    "submit-withdraw-bursts",
    "subject-searches-per-user",
]


class AlertRule(Strict):
    """A pattern in the audit log that the privacy officer wants to hear of.

    `threshold` counts events per actor within `window_minutes`; for
    `payload-reads-above-usual` an actor must also exceed `factor` times their own daily
    average over the `baseline_days` before; for `submit-withdraw-bursts` it counts
    withdrawals of signals submitted in the same window (the probing pattern); for
    `reads-outside-office-hours` only reads outside `office_hours` (local time, working
    days) count.
    """

    id: Name
    description: Text
    kind: AlertKind
    window_minutes: int = Field(ge=1, le=60 * 24 * 31)
    threshold: int = Field(ge=1, le=1_000_000, description="Events in the window that raise it.")
    factor: float | None = Field(default=None, gt=1, le=1000)
    baseline_days: int | None = Field(default=None, ge=1, le=365)
    office_hours: tuple[int, int] | None = Field(
        default=None, description="First and last hour (exclusive) of office hours, 0-24."
    )
    timezone: Annotated[str, StringConstraints(max_length=64)] = "Europe/Amsterdam"

    @model_validator(mode="after")
    def _parameters(self) -> AlertRule:
        if self.kind == "payload-reads-above-usual" and (
            self.factor is None or self.baseline_days is None
        ):
            raise ValueError("payload-reads-above-usual needs factor and baseline_days")
        if self.kind == "reads-outside-office-hours":
            hours = self.office_hours
            if hours is None or not 0 <= hours[0] < hours[1] <= 24:
                raise ValueError("reads-outside-office-hours needs office_hours [start, end]")
        return self


class CaseActor(Strict):
    type: Literal["client", "user"]
    id: Text | None = None
    organisation: Name | None = None
    organisation_kind: Name | None = None
    role: RoleName | None = None
    scopes: list[Scope] = Field(default_factory=list)


class CaseResource(Strict):
    type: Name
    category: Annotated[str, StringConstraints(max_length=64)] | None = None
    organisation: Name | None = None
    submitter: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="The user who filed the signal (web intake)."
    )


class CaseContext(Strict):
    purpose: Annotated[str, StringConstraints(max_length=64)] | None = None
    approver: CaseActor | None = None


class Expectation(Strict):
    effect: Literal["allow", "deny"]
    rule: Annotated[str, StringConstraints(max_length=64)]
    obligations: list[str] | None = Field(
        default=None, description='If given, exactly these (e.g. "needs_second_approval").'
    )


class TestCase(Strict):
    name: Text
    actor: CaseActor
    action: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="Any string: test cases may check that unknown actions are denied."
    )
    resource: CaseResource
    context: CaseContext = Field(default_factory=CaseContext)
    expect: Expectation


class Figures(Strict):
    """Disclosure control for the published figures (`GET /v1/figures`, `/figures`)."""

    threshold: int = Field(
        default=5,
        ge=2,
        le=100,
        description='A count below this is published as "< threshold", never as a number.',
    )
    minimum_period_days: int = Field(
        default=90,
        ge=1,
        le=366,
        description="Shorter periods are not published (a quarter has 90 to 92 days).",
    )
    outcomes: list[Name] = Field(
        default_factory=list,
        description=(
            "Case outcomes counted by name; a closed case whose outcome is none of these "
            'counts as "other" (outcomes are free text and are never published as typed).'
        ),
    )


class Policy(Strict):
    """A data-sharing agreement; keys in English, descriptions in the partners' language."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="Ketenpoort policy",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    id: Name
    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    title: Text
    description: Text | None = None
    controller: Controller
    organisation_kinds: dict[Name, OrganisationKind] = Field(min_length=1)
    categories: dict[Name, Category] = Field(min_length=1)
    matching: Matching
    roles: dict[RoleName, Role]
    purposes: Purposes
    rules: list[Rule] = Field(default_factory=list, description="Allow rules; all else is denied.")
    four_eyes: list[FourEyes] = Field(default_factory=list)
    separate_scopes: list[list[Scope]] = Field(
        default_factory=lambda: [["audit:read", "cases:write"]],
        description=(
            "Sets of scopes no single OAuth client may hold together (separation of duties, "
            "checked when a client is registered); [] allows every combination."
        ),
    )
    alerts: list[AlertRule] = Field(
        default_factory=list, description="Patterns in the audit log that raise an alert."
    )
    figures: Figures = Field(default_factory=Figures)
    tests: list[TestCase] = Field(default_factory=list)


Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class SemanticError:
    loc: Loc
    message: str


def semantic_errors(policy: Policy) -> list[SemanticError]:
    """Cross-references and invariants the field types cannot express."""
    return list(_semantic_errors(policy))


def _semantic_errors(p: Policy) -> Iterator[SemanticError]:
    kinds = set(p.organisation_kinds)
    categories = set(p.categories)
    purposes = set(p.purposes.allowed)

    def unknown(loc: Loc, values: list[str] | None, known: set[str], what: str) -> Iterator[Any]:
        for i, value in enumerate(values or []):
            if value not in known:
                yield SemanticError((*loc, i), f"unknown {what} {value!r}")

    if "meldpunt" not in kinds:
        yield SemanticError(("organisation_kinds",), "the organisation kind 'meldpunt' is missing")
    for name, cat in p.categories.items():
        loc: Loc = ("categories", name)
        if p.controller.organisation not in cat.required_recipients:
            yield SemanticError(
                (*loc, "required_recipients"),
                f"the meldpunt ({p.controller.organisation!r}) must be a required recipient",
            )
        yield from unknown(
            (*loc, "optional_recipient_kinds"),
            cat.optional_recipient_kinds,
            kinds,
            "organisation kind",
        )
        yield from unknown((*loc, "submitters"), cat.submitters, kinds, "organisation kind")
        if cat.test and cat.disclosure is not None:
            yield SemanticError((*loc, "disclosure"), "a test category keeps nothing to disclose")
        if cat.disclosure is not None:
            yield from unknown(
                (*loc, "disclosure", "review_submitters"),
                cat.disclosure.review_submitters,
                kinds,
                "organisation kind",
            )
    for kind, disclosure in p.matching.submitters.items():
        if kind not in kinds:
            yield SemanticError(
                ("matching", "submitters", kind), f"unknown organisation kind {kind!r}"
            )
        if disclosure.reveals_organisations and not disclosure.told_hit:
            yield SemanticError(
                ("matching", "submitters", kind, "reveals_organisations"),
                "cannot reveal organisations without telling the hit (told_hit: false)",
            )
    for role in ROLES:
        if role not in p.roles:
            yield SemanticError(("roles",), f"the role {role!r} is missing")
    for role, forbidden in ALWAYS_FORBIDDEN.items():
        defined = p.roles.get(role)  # type: ignore[call-overload]
        if defined is not None and not forbidden <= set(defined.never):
            missing = ", ".join(sorted(forbidden - set(defined.never)))
            yield SemanticError(
                ("roles", role, "never"), f"separation of duties: {role} must never do {missing}"
            )
    if "payload.read" not in p.purposes.required_for:
        yield SemanticError(
            ("purposes", "required_for"), "payload.read must always require a purpose"
        )
    seen: dict[str, int] = {}
    for i, rule in enumerate(p.rules):
        loc = ("rules", i)
        if rule.id in seen:
            yield SemanticError(
                (*loc, "id"), f"rule id {rule.id!r} is also used by rules[{seen[rule.id]}]"
            )
        seen.setdefault(rule.id, i)
        yield from _rule_errors(p, rule, loc, kinds, categories, purposes)
    for i, four in enumerate(p.four_eyes):
        yield from unknown(("four_eyes", i, "categories"), four.categories, categories, "category")
    alert_ids: dict[str, int] = {}
    for i, alert in enumerate(p.alerts):
        if alert.id in alert_ids:
            yield SemanticError(
                ("alerts", i, "id"),
                f"alert id {alert.id!r} is also used by alerts[{alert_ids[alert.id]}]",
            )
        alert_ids.setdefault(alert.id, i)
        try:
            ZoneInfo(alert.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            yield SemanticError(("alerts", i, "timezone"), f"unknown time zone {alert.timezone!r}")
    rule_ids = set(seen) | DENY_RULES
    for i, case in enumerate(p.tests):
        if case.expect.rule not in rule_ids:
            yield SemanticError(("tests", i, "expect", "rule"), f"no rule {case.expect.rule!r}")
        if case.actor.type == "user" and case.actor.role is None:
            yield SemanticError(("tests", i, "actor", "role"), "a user needs a role")


def _rule_errors(
    p: Policy, rule: Rule, loc: Loc, kinds: set[str], categories: set[str], purposes: set[str]
) -> Iterator[SemanticError]:
    who = rule.who
    if who.type == "user":
        if not who.roles:
            yield SemanticError((*loc, "who", "roles"), "a rule for users must name their roles")
        if who.organisation_kinds is not None:
            yield SemanticError(
                (*loc, "who", "organisation_kinds"), "users are covered by role, not by kind"
            )
        for role in who.roles or []:
            role_def = p.roles.get(role)
            never = set(role_def.never if role_def else ()) | ALWAYS_FORBIDDEN.get(role, set())
            for j, action in enumerate(rule.actions):
                if action in never:
                    yield SemanticError(
                        (*loc, "actions", j),
                        f"separation of duties: role {role!r} may never do {action}",
                    )
    else:
        if who.roles is not None:
            yield SemanticError((*loc, "who", "roles"), "roles apply to users, not to clients")
        for j, kind in enumerate(who.organisation_kinds or []):
            if kind not in kinds:
                yield SemanticError(
                    (*loc, "who", "organisation_kinds", j), f"unknown organisation kind {kind!r}"
                )
    for j, category in enumerate(rule.categories or []):
        if category not in categories:
            yield SemanticError((*loc, "categories", j), f"unknown category {category!r}")
    if rule.categories is not None and all(ACTIONS[a] == "none" for a in rule.actions):
        yield SemanticError((*loc, "categories"), "none of these actions concern a category")
    if rule.category_submitter and not any(ACTIONS[a] != "none" for a in rule.actions):
        yield SemanticError((*loc, "category_submitter"), "none of these actions has a category")
    for j, purpose in enumerate(rule.purposes or []):
        if purpose not in purposes:
            yield SemanticError((*loc, "purposes", j), f"unknown purpose {purpose!r}")


def json_schema() -> dict[str, Any]:
    schema = Policy.model_json_schema()
    return {"$schema": schema.pop("$schema"), **schema}


def schema_text() -> str:
    """The exact text of `policies/schema.json`."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
