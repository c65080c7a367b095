"""The privacy officer's timeline at 10^6 entries: one page (newest first, 50 entries)
per filter, first and deep pages, as `AuditService.timeline` queries them; prints
milliseconds (never asserts them).

Usage: .venv/bin/python bench/bench_audit_timeline.py [--entries 1000000] [--url URL]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from gateway.audit.models import AuditEntryRow, AuditSubjectRow
from gateway.audit.queries import EntryFilter, page, visible_entries
from gateway.db import Database
from gateway.migrate import upgrade_to_head

ACTIONS = ["signal.create", "signal.read", "audit.read", "payload.read", "policy.decide"]
RULES = ["partner-submits-signal", "coordinator-reads-payload", None]


def fill(db: Database, count: int) -> None:
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    batch: list[dict[str, object]] = []
    subjects: list[dict[str, object]] = []
    for i in range(count):
        action = ACTIONS[i % len(ACTIONS)] if i % 1000 else "subject.search"
        batch.append(
            {
                "id": i + 1,
                "seq": i,
                "leaf_hash": rng.randbytes(32),
                "data": b"{}",
                "action": action,
                "outcome": "denied" if i % 97 == 0 else "success",
                "actor_id": f"actor-{i % 300}",
                "actor_organisation": f"org-{i % 12}",
                "policy_rule": RULES[i % 3],
                "purpose": "case-review" if action == "payload.read" else None,
                "created_at": start + timedelta(seconds=i * 20),
            }
        )
        if i % 50_000 == 7:
            subjects.append({"entry_id": i + 1, "subject_id": "person-a"})
        if len(batch) == 20_000:
            with db.transaction() as session:
                session.execute(insert(AuditEntryRow), batch)
                if subjects:
                    session.execute(insert(AuditSubjectRow), subjects)
            batch, subjects = [], []
    if batch:
        with db.transaction() as session:
            session.execute(insert(AuditEntryRow), batch)
            if subjects:
                session.execute(insert(AuditSubjectRow), subjects)


def timed(db: Database, where: EntryFilter, below: int | None) -> tuple[float, int]:
    stmt = visible_entries(where, organisation=None, whole_log=True)
    stmt = stmt.order_by(None).order_by(AuditEntryRow.seq.desc())
    if below is not None:
        stmt = stmt.where(AuditEntryRow.seq < below)
    started = time.perf_counter()
    with db.session() as session:
        found = page(session, stmt, 51)
    return (time.perf_counter() - started) * 1000, len(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--url", default=os.environ.get("KETENPOORT_BENCH_POSTGRES_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/timeline.db"
        db = Database(url)
        upgrade_to_head(db.engine)
        started = time.perf_counter()
        fill(db, args.entries)
        print(f"{args.entries} entries written in {time.perf_counter() - started:.1f} s ({url})")
        middle = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=args.entries * 10)
        cases = {
            "no filter": EntryFilter(),
            "action": EntryFilter(action="payload.read"),
            "rare action": EntryFilter(action="subject.search"),
            "actor": EntryFilter(actor_id="actor-17"),
            "organisation + outcome": EntryFilter(actor_organisation="org-3", outcome="denied"),
            "policy rule": EntryFilter(policy_rule="coordinator-reads-payload"),
            "purpose": EntryFilter(purpose="case-review"),
            "period (one day)": EntryFilter(since=middle, until=middle + timedelta(days=1)),
            "person (20 entries)": EntryFilter(subjects=("person-a",)),
        }
        for name, where in cases.items():
            first, n = timed(db, where, None)
            deep, m = timed(db, where, args.entries // 10)
            print(
                f"{name:<26} first page {first:8.1f} ms ({n:2})   deep page {deep:8.1f} ms ({m:2})"
            )
        db.dispose()


if __name__ == "__main__":
    main()
