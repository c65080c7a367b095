"""`GET /v1/oprf/key` and `POST /v1/oprf/evaluations` (DESIGN.md, blind submission).

The evaluation is audited as `oprf.evaluate` with the count of elements only: the
blinded elements are uniformly random group elements, but they are still the
partner's queries and are no business of the audit log.
"""

from __future__ import annotations

from flask import Blueprint, Response
from pydantic import Field

from gateway.api.models import ApiModel
from gateway.api.openapi import operation
from gateway.api.validation import json_response, read_body
from gateway.oprf import service
from gateway.policy.engine import Resource
from gateway.policy.service import authorize, record_allowed
from gateway.pseudonyms import Pseudonymiser
from gateway.security import current_actor
from gateway.services import db_session, services

bp = Blueprint("oprf", __name__)


def pseudonymiser() -> Pseudonymiser:
    """The process's one unsealed pseudonym key (the container's, as the signals use)."""
    return services().pseudonyms.get()


class OprfKey(ApiModel):
    suite: str = Field(description="RFC 9497 suite: ristretto255-SHA512.")
    mode: str = Field(description="RFC 9497 mode: voprf.")
    key_id: str = Field(description="Send back with evaluations; a change means a new key.")
    public_key: str = Field(description="pkS = k·G, base64url, to verify evaluation proofs.")


class EvaluationRequest(ApiModel):
    key_id: str = Field(min_length=1, max_length=128)
    blinded_elements: list[str] = Field(min_length=1, max_length=service.MAX_ELEMENTS)


class Proof(ApiModel):
    c: str
    s: str


class EvaluationResponse(ApiModel):
    key_id: str
    evaluated_elements: list[str]
    proof: Proof


@bp.get("/v1/oprf/key")
@operation(
    operation_id="getOprfKey",
    summary="The public key blind clients verify evaluation proofs against",
    description=(
        "RFC 9497 VOPRF, ristretto255-SHA512. Blind match keys with the OPRF-mode "
        "HashToGroup DST (HashToGroup-OPRFV1-\\x00-ristretto255-SHA512) so that the "
        "unblinded element equals the pseudonym of a plain submission."
    ),
    tags=("signals",),
    response=OprfKey,
    public=True,
)
def get_key() -> Response:
    key = service.public_key(pseudonymiser())
    return json_response(
        OprfKey(
            suite=service.SUITE,
            mode=service.MODE,
            key_id=key.key_id,
            public_key=service.encode(key.public_key),
        )
    )


@bp.post("/v1/oprf/evaluations")
@operation(
    operation_id="evaluateBlinded",
    summary="Evaluate blinded match keys under the pseudonym key, with a DLEQ proof",
    description=(
        f"At most {service.MAX_ELEMENTS} elements per request. A `keyId` that is not "
        "the active key or the one it just replaced is a 409 `oprf-key-changed`: fetch "
        "the key again."
    ),
    tags=("signals",),
    request=EvaluationRequest,
    response=EvaluationResponse,
    status=200,
    scopes=("signals:write",),
    errors=(400, 409),
)
def evaluations() -> Response:
    actor = current_actor()
    body = read_body(EvaluationRequest)
    blinded = service.check_evaluation(
        body.data.get("keyId"),
        body.data.get("blindedElements"),
        lambda kid: Pseudonymiser.serves(services().keys, kid, pseudonymiser()),
        body.errors,
    )
    assert body.model is not None
    session = db_session()
    decision = authorize(session, actor, "oprf.evaluate", Resource(type="oprf-key"))
    current = pseudonymiser()
    result = service.evaluate(
        current,
        body.model.key_id,
        blinded,
        lambda kid: Pseudonymiser.previous(services().keys, kid, current),
    )
    record_allowed(
        session,
        actor,
        decision,
        "oprf.evaluate",
        "oprf-key",
        detail={"elements": len(blinded)},
    )
    session.commit()
    return json_response(
        EvaluationResponse(
            key_id=result.key_id,
            evaluated_elements=[service.encode(e) for e in result.evaluated],
            proof=Proof(c=service.encode(result.proof[:32]), s=service.encode(result.proof[32:])),
        )
    )
