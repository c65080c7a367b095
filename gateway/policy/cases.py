"""Run a policy file's own test cases (`ketenpoort policy test`)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.actors import Actor
from gateway.policy.engine import Context, Decision, PolicyEngine, Resource
from gateway.policy.schema import CaseActor, TestCase


@dataclass(frozen=True)
class CaseResult:
    case: TestCase
    decision: Decision
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def actor_of(case: CaseActor) -> Actor:
    return Actor(
        type=case.type,
        id=case.id or case.organisation or f"test-{case.role or case.type}",
        organisation=case.organisation,
        organisation_kind=case.organisation_kind,
        role=case.role,
        scopes=frozenset(case.scopes),
    )


def run_case(engine: PolicyEngine, case: TestCase) -> CaseResult:
    approver = case.context.approver
    decision = engine.decide(
        actor_of(case.actor),
        case.action,
        Resource(
            type=case.resource.type,
            category=case.resource.category,
            organisation=case.resource.organisation,
            submitter=case.resource.submitter,
        ),
        Context(
            purpose=case.context.purpose,
            approver=actor_of(approver) if approver is not None else None,
        ),
    )
    expect = case.expect
    failures = []
    if decision.effect != expect.effect or decision.rule != expect.rule:
        failures.append(
            f"expected {expect.effect} by {expect.rule}, got {decision.effect} by "
            f"{decision.rule} ({decision.reason})"
        )
    if expect.obligations is not None:
        got = sorted(str(o) for o in decision.obligations)
        if got != sorted(expect.obligations):
            failures.append(f"expected obligations {sorted(expect.obligations)}, got {got}")
    return CaseResult(case, decision, tuple(failures))


def run_cases(engine: PolicyEngine) -> list[CaseResult]:
    return [run_case(engine, case) for case in engine.policy.tests]
