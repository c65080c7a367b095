"""`SubjectSearchService`: everything Ketenpoort holds about one person (AVG art. 15).

The identifiers are turned into the same pseudonyms as on submission and forgotten when
the call ends; the answer is every signal still holding one of them and every audit
entry naming one of them (withdrawn and expired signals included, through their
entries). The search itself is audited with the decision that allowed it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit.export import api_item
from gateway.audit.queries import EntryFilter, page, visible_entries
from gateway.policy.audited import record_decision, refuse
from gateway.policy.engine import PolicyEngine, Resource
from gateway.pseudonyms.service import Pseudonymiser
from gateway.signals.service import Signal, signals_by_pseudonyms, subject_refs

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class FoundEntry:
    index: int
    leaf_hash: str
    entry: dict[str, Any]


@dataclass(frozen=True)
class SubjectFindings:
    subject_references: tuple[str, ...]
    signals: tuple[Signal, ...]
    #: Sequenced audit entries naming the person, in log order.
    audit_entries: tuple[FoundEntry, ...]


@dataclass
class SubjectSearchService:
    engine: PolicyEngine
    pseudonymiser: Callable[[], Pseudonymiser]
    #: Sequences pending audit entries first, so the search sees every committed entry.
    catch_up: Callable[[], None]

    def search(
        self, open_session: Callable[[], Session], actor: Actor, subject: Mapping[str, Any]
    ) -> SubjectFindings:
        """Search in the session `open_session` gives, opened only after the log caught up
        (on SQLite, catching up needs the write lock that session would hold)."""
        pseudonyms = self.pseudonymiser().pseudonyms(dict(subject))
        resource = Resource(type="subject")
        decision = self.engine.decide(actor, "subject.search", resource)
        if decision.allowed:
            self.catch_up()
        session = open_session()
        if not decision.allowed:
            refuse(session, actor, decision, resource)
        refs = subject_refs(pseudonyms)
        signals = signals_by_pseudonyms(session, pseudonyms.items())
        found: dict[int, FoundEntry] = {}
        for ref in refs:
            # allowed to search is allowed to see every entry about the person, whoever
            # the actor (the officer's system by its audit:read scope, or the officer)
            stmt = visible_entries(EntryFilter(subject=ref.id), organisation=None, whole_log=True)
            for stored in page(session, stmt, MAX_ENTRIES):
                item = api_item(stored)
                found[stored.index] = FoundEntry(item["index"], item["leafHash"], item["entry"])
        record_decision(
            session,
            actor,
            decision,
            resource,
            subjects=refs,
            detail={"signals": len(signals), "auditEntries": len(found)},
        )
        return SubjectFindings(
            subject_references=tuple(r.id for r in refs),
            signals=tuple(signals),
            audit_entries=tuple(found[i] for i in sorted(found)),
        )
