"""The privacy officer's oversight figures: payload reads (protected), refusals by rule,
and rate-limit hits per client, audited at 1, 10, 100, … hits a minute."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from flask import Flask
from sqlalchemy import select

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.audit.limits import ACTION, RateLimitAudit
from gateway.audit.models import AuditEntryRow

OFFICER = Actor(type="user", id="p.visser", role="privacy-officer")
ANNA = Actor(type="user", id="anna", role="coordinator")
YEAR = datetime.now(UTC).year


def test_rate_limit_hits_are_audited_bounded(app: Flask) -> None:
    db = app.extensions["ketenpoort"].db
    clock = [600.0]
    audit = RateLimitAudit(db, clock=lambda: clock[0])
    for _ in range(12):
        audit.record("police-1", "v1")
    clock[0] += 60  # a new minute starts again at one
    audit.record("police-1", "v1")
    with db.transaction(write=False) as session:
        entries = [
            json.loads(d)
            for d in session.execute(
                select(AuditEntryRow.data).where(AuditEntryRow.action == ACTION)
            ).scalars()
        ]
    assert [e["detail"]["count"] for e in entries] == [1, 9, 1]
    assert {e["actor"]["id"] for e in entries} == {"police-1"}


def test_the_oversight_counts_from_the_audit_log(app: Flask) -> None:
    svc = app.extensions["ketenpoort"]
    audit = RateLimitAudit(svc.db)
    for _ in range(10):
        audit.record("police-1", "v1")
    with svc.db.transaction() as session:
        for i in range(7):
            record_event(
                session,
                AuditEvent(
                    action="payload.read",
                    outcome="success",
                    actor=ANNA,
                    purpose="case-assessment" if i < 6 else "case-meeting",
                ),
            )
        record_event(
            session,
            AuditEvent(action="payload.read", outcome="denied", actor=ANNA, policy_rule="deny:x"),
        )
    with svc.db.transaction() as session:
        found = svc.figures.oversight(session, OFFICER, date(YEAR, 1, 1), date(YEAR, 12, 31))
    reads = found.payload_reads
    assert reads.cells[("anna", "case-meeting")] is None  # one read: "< 5"
    # the 6 and the 7 together would give the single read away: not both are published
    shown = [reads.cells.get(k) for k in (("anna", "case-assessment"), ("anna", "all"))]
    assert not all(isinstance(v, int) for v in shown)
    assert all(v is None or v >= 5 for v in reads.cells.values())
    assert found.refusals.cells == {("deny:x", "all"): 1}
    assert found.rate_limits.cells == {("police-1", "all"): 10}
