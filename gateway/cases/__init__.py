"""Cases, four-eyes approvals, purpose-bound payload reads and shares with partners.

`build(engine, keys)` makes the services once, in the composition root (`gateway.app`);
the `/v1/cases` and `/v1/shares` routes and the web pages find them as `services().cases`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.cases.approvals import ApprovalService, PayloadService
    from gateway.cases.service import CaseService
    from gateway.cases.shares import ShareService
    from gateway.keys import KeyStore
    from gateway.policy.engine import PolicyEngine


@dataclass(frozen=True)
class CaseServices:
    cases: CaseService
    approvals: ApprovalService
    payloads: PayloadService
    shares: ShareService


def build(engine: PolicyEngine, keys: KeyStore) -> CaseServices:
    """The four services, wired: approving a share performs it, reads consume approvals."""
    from gateway.cases.approvals import (
        PAYLOAD_READ,
        ApprovalService,
        PayloadReadHandler,
        PayloadService,
    )
    from gateway.cases.service import CaseService
    from gateway.cases.shares import ShareService

    approvals = ApprovalService(engine)
    approvals.handlers[PAYLOAD_READ] = PayloadReadHandler(engine)
    return CaseServices(
        cases=CaseService(engine, keys),
        approvals=approvals,
        payloads=PayloadService(engine, keys, approvals),
        shares=ShareService(engine, keys, approvals),
    )
