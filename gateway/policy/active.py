"""The active policy of one process: loaded once at start, its activation recorded.

`PolicyService` is built by the composition root (`gateway.app.create_app`) from the
file named by `KETENPOORT_POLICY` (a broken file stops the start with `PolicyError`);
`activate` records a `policy.activated` audit entry when the digest differs from the
last active one, keeping the document in `policy_versions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.actors import SYSTEM
from gateway.audit import AuditEvent, record_event
from gateway.db import Database
from gateway.logs import get_logger
from gateway.policy.engine import PolicyEngine
from gateway.policy.loader import LoadedPolicy, load_policy
from gateway.policy.models import PolicyVersionRow

log = get_logger(__name__)

#: pg_advisory_xact_lock key serialising activations across gateway processes ("KPpolicy").
_ACTIVATION_LOCK = 0x4B50706F6C696379


@dataclass
class PolicyService:
    loaded: LoadedPolicy
    engine: PolicyEngine = field(init=False)
    activated: bool = False

    def __post_init__(self) -> None:
        self.engine = PolicyEngine(self.loaded)

    @property
    def digest(self) -> str:
        return self.loaded.digest

    def summary(self) -> dict[str, Any]:
        """The body of `GET /v1/policy`."""
        p = self.loaded.policy
        return {
            "id": p.id,
            "version": p.version,
            "digest": self.loaded.digest,
            "categories": {
                name: {
                    "retentionDays": c.retention_days,
                    "requiredRecipients": list(c.required_recipients),
                    "processingActivity": c.processing_activity,
                    "test": c.test,
                }
                for name, c in p.categories.items()
            },
        }

    def activate(self, db: Database, *, now: datetime | None = None) -> bool:
        """Record this policy as active if it is not already; True when it was recorded."""
        recorded = activate(db, self.loaded, now=now)
        self.activated = True
        return recorded

    def check_ready(self, db: Database) -> None:
        if not self.activated:
            try:
                self.activate(db)
            except SQLAlchemyError as exc:
                raise RuntimeError(f"activation not recorded ({type(exc).__name__})") from None


def activate(db: Database, loaded: LoadedPolicy, *, now: datetime | None = None) -> bool:
    """Store the version and audit `policy.activated` when the digest differs from the last
    active one. Safe when several gateway processes start at once."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:  # SQLite: BEGIN IMMEDIATE serialises
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ACTIVATION_LOCK})
        last = session.execute(
            select(PolicyVersionRow.digest).order_by(PolicyVersionRow.activated_at.desc()).limit(1)
        ).scalar_one_or_none()
        if last == loaded.digest:
            return False
        row = session.get(PolicyVersionRow, loaded.digest)
        if row is None:
            session.add(
                PolicyVersionRow(
                    digest=loaded.digest,
                    policy_id=loaded.policy.id,
                    version=loaded.policy.version,
                    document=loaded.canonical.decode("utf-8"),
                    first_activated_at=now,
                    activated_at=now,
                )
            )
        else:
            row.activated_at = now
        record_event(
            session,
            AuditEvent(
                action="policy.activated",
                outcome="success",
                actor=SYSTEM,
                resource_type="policy",
                resource_id=loaded.policy.id,
                policy_digest=loaded.digest,
                detail={
                    "id": loaded.policy.id,
                    "version": loaded.policy.version,
                    "previousDigest": last,
                },
            ),
            now=now,
        )
    log.info(
        "policy.activated",
        policy=loaded.policy.id,
        version=loaded.policy.version,
        digest=loaded.digest,
    )
    return True


def version_by_digest(session: Session, digest: str) -> PolicyVersionRow | None:
    """A policy version that was once active, by its digest (as named in audit entries)."""
    return session.get(PolicyVersionRow, digest)


def list_versions(session: Session) -> list[PolicyVersionRow]:
    return list(
        session.execute(
            select(PolicyVersionRow).order_by(PolicyVersionRow.activated_at.desc())
        ).scalars()
    )


def start_policy(path: Path, db: Database) -> PolicyService:
    """Load the policy (raises `PolicyError` when the file is broken) and record it as
    active; a database that is not initialised yet is retried by the readiness check."""
    service = PolicyService(load_policy(path))
    try:
        service.activate(db)
    except SQLAlchemyError as exc:
        log.warning("policy.activation_deferred", error=type(exc).__name__)
    return service
