"""`GET /v1/policy`: what a partner needs to build a signal — categories, retention,
required recipients and the processing activity — and the digest that its audit
entries will name."""

from __future__ import annotations

from flask import Blueprint, Response
from pydantic import Field

from gateway.api.models import ApiModel
from gateway.api.openapi import operation
from gateway.api.validation import json_response
from gateway.policy.engine import Resource
from gateway.policy.service import authorize, policy_service, record_allowed
from gateway.security import current_actor
from gateway.services import db_session

bp = Blueprint("policy", __name__)


class CategorySummary(ApiModel):
    retention_days: int = Field(description="Signals in this category expire after this many days.")
    required_recipients: list[str] = Field(
        description="Organisation ids whose encryption keys every payload must be encrypted for."
    )
    processing_activity: str = Field(
        description="URI of the processing activity in the controller's register (AVG art. 30)."
    )
    test: bool = Field(
        description=(
            "Reserved for conformance tests: a signal here is checked and audited, then "
            "erased before the response (status `erased`); never matched, never shared."
        )
    )


class PolicySummary(ApiModel):
    """The active data-sharing policy, as far as partner systems need it."""

    id: str
    version: str
    digest: str = Field(description="SHA-256 (hex) of the policy's RFC 8785 canonical JSON.")
    categories: dict[str, CategorySummary]


@bp.get("/v1/policy")
@operation(
    operation_id="getPolicy",
    summary="The active data-sharing policy",
    description=(
        "Categories with their retention, required recipients and processing activity, "
        "and the digest that audit entries name. Open to every valid access token."
    ),
    tags=("policy",),
    response=PolicySummary,
    scopes=(),
)
def get_policy() -> Response:
    actor = current_actor()
    service = policy_service()
    session = db_session()
    resource = Resource(type="policy", id=service.loaded.policy.id)
    decision = authorize(session, actor, "policy.read", resource)
    record_allowed(session, actor, decision, "policy.read", resource.type, resource_id=resource.id)
    session.commit()
    return json_response(service.summary())
