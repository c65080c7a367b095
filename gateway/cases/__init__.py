"""Cases, four-eyes approvals, purpose-bound payload reads and shares with partners.

`init_app(app)` builds the services once (after the policy is loaded) and registers the
`/v1/cases` and `/v1/shares` routes; web pages get the same services from
`case_services()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from gateway.cases.approvals import ApprovalService, PayloadService
    from gateway.cases.service import CaseService
    from gateway.cases.shares import ShareService
    from gateway.keys import KeyStore
    from gateway.policy.engine import PolicyEngine

CASE_SERVICES = "cases"


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


def case_services() -> CaseServices:
    """The app's case services (inside an app context)."""
    from gateway.services import services

    found: CaseServices = services().extra[CASE_SERVICES]
    return found


def init_app(app: Flask) -> None:
    from gateway.cases.views import bp
    from gateway.policy.service import POLICY_SERVICE
    from gateway.services import EXTENSION

    svc = app.extensions[EXTENSION]
    svc.extra[CASE_SERVICES] = build(svc.extra[POLICY_SERVICE].engine, svc.keys)
    app.register_blueprint(bp)
