"""How much the policy engine adds to a request: decisions per second and µs per decision.

Goal: under 50 µs per decision. Run: `.venv/bin/python bench/bench_policy.py`.
"""

from __future__ import annotations

import time
from pathlib import Path

from gateway.actors import Actor
from gateway.policy.engine import Context, PolicyEngine, Resource
from gateway.policy.loader import load_policy

ROOT = Path(__file__).resolve().parent.parent
GOAL_US = 50.0

POLICE = Actor(
    type="client",
    id="politie-app",
    organisation="politie-oost",
    organisation_kind="police",
    scopes=frozenset({"signals:write", "signals:read"}),
)
COORDINATOR = Actor(type="user", id="anna", organisation="meldpunt", role="coordinator")
SECOND = Actor(type="user", id="bram", organisation="meldpunt", role="coordinator")
ADMIN = Actor(type="user", id="carla", organisation="meldpunt", role="admin")

CASES = {
    "signal.create allow": (
        POLICE,
        "signal.create",
        Resource(type="signal", category="possible-victim"),
        None,
    ),
    "signal.read own": (
        POLICE,
        "signal.read",
        Resource(type="signal", category="concern", organisation="politie-oost"),
        None,
    ),
    "payload.read four-eyes": (
        COORDINATOR,
        "payload.read",
        Resource(type="signal", category="possible-perpetrator"),
        Context(purpose="case-meeting", approver=SECOND),
    ),
    "payload.read admin deny": (
        ADMIN,
        "payload.read",
        Resource(type="signal", category="possible-victim"),
        Context(purpose="case-assessment"),
    ),
    "match.read no rule": (POLICE, "match.read", Resource(type="match"), None),
    "unknown action": (POLICE, "signal.destroy", Resource(type="signal"), None),
}


def measure(engine: PolicyEngine, n: int) -> None:
    print(f"policy {engine.policy.id} {engine.policy.version}, {len(engine.policy.rules)} rules")
    print(f"{'case':<26} {'decisions/s':>12} {'µs/decision':>12}")
    worst = 0.0
    for name, (actor, action, resource, context) in CASES.items():
        for _ in range(1000):  # warm up
            engine.decide(actor, action, resource, context)
        start = time.perf_counter()
        for _ in range(n):
            engine.decide(actor, action, resource, context)
        elapsed = time.perf_counter() - start
        us = elapsed / n * 1e6
        worst = max(worst, us)
        print(f"{name:<26} {n / elapsed:>12,.0f} {us:>12.2f}")
    verdict = "within" if worst < GOAL_US else "OVER"
    print(f"worst case {worst:.2f} µs per decision: {verdict} the {GOAL_US:.0f} µs goal")


def main() -> None:
    start = time.perf_counter()
    loaded = load_policy(ROOT / "policies" / "twente.yaml")
    print(f"loading and validating the policy: {(time.perf_counter() - start) * 1e3:.1f} ms")
    measure(PolicyEngine(loaded), 100_000)


if __name__ == "__main__":
    main()
