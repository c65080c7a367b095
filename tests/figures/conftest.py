"""Figures fixtures: metadata rows with chosen dates (the payload column holds a marker
that no figure may depend on)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask

from gateway.actors import SYSTEM
from gateway.audit import AuditEvent, record_event
from gateway.cases.models import CaseRow, CaseSignalRow, ShareRow
from gateway.matching.models import MatchRow
from gateway.signals.models import SignalRow

PAYLOAD = "payload-never-read"


@dataclass
class Seeder:
    app: Flask

    def signals(self, when: datetime, kind: str, category: str, n: int = 1) -> list[int]:
        pks = []
        with self.app.extensions["ketenpoort"].db.transaction() as session:
            for _ in range(n):
                row = SignalRow(
                    id=str(uuid.uuid4()),
                    organisation=f"org-{kind}",
                    organisation_kind=kind,
                    reference=uuid.uuid4().hex[:12],
                    category=category,
                    status="active",
                    linkage_keys="bsn",
                    created_at=when,
                    expires_at=when + timedelta(days=365),
                    payload=PAYLOAD,
                )
                session.add(row)
                session.flush()
                pks.append(row.pk)
        return pks

    def withdraw(self, when: datetime, n: int) -> None:
        with self.app.extensions["ketenpoort"].db.transaction() as session:
            for _ in range(n):
                session.add(
                    SignalRow(
                        id=str(uuid.uuid4()),
                        organisation="org-care",
                        organisation_kind="care",
                        reference=uuid.uuid4().hex[:12],
                        category="concern",
                        status="withdrawn",
                        linkage_keys="bsn",
                        created_at=when,
                        withdrawn_at=when,
                        expires_at=when + timedelta(days=365),
                    )
                )

    def erasures(self, when: datetime, n: int) -> None:
        with self.app.extensions["ketenpoort"].db.transaction() as session:
            for _ in range(n):
                record_event(
                    session,
                    AuditEvent(action="signal.expire", outcome="success", actor=SYSTEM),
                    now=when,
                )

    def matches(self, when: datetime, n: int) -> None:
        with self.app.extensions["ketenpoort"].db.transaction() as session:
            for _ in range(n):
                session.add(MatchRow(id=str(uuid.uuid4()), created_at=when, updated_at=when))

    def case(self, when: datetime, signal_pks: list[int], *, closed: str | None = None) -> None:
        with self.app.extensions["ketenpoort"].db.transaction() as session:
            case = CaseRow(
                id=str(uuid.uuid4()),
                title="Casus",
                status="closed" if closed else "open",
                outcome=closed,
                created_by="user:anna",
                created_at=when,
                updated_at=when,
            )
            session.add(case)
            session.flush()
            for pk in signal_pks:
                session.add(CaseSignalRow(case_pk=case.pk, signal_pk=pk, linked_at=when))
            session.add(
                ShareRow(
                    id=str(uuid.uuid4()),
                    case_pk=case.pk,
                    purpose="case-meeting",
                    status="shared",
                    organisations=["org-police"],
                    signal_ids=[],
                    requested_by="user:anna",
                    created_at=when,
                    shared_at=when,
                )
            )


def at(year: int, month: int, day: int = 15) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)
