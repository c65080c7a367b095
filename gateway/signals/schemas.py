"""Request and response bodies of the signals API (lower camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from gateway.api.models import ApiModel


class SubjectIn(ApiModel):
    """The person the signal is about. Pseudonymised on arrival; never stored."""

    bsn: str | None = Field(
        default=None, description="Burgerservicenummer: 9 digits, valid by the 11-test."
    )
    family_name: str | None = Field(
        default=None, description="Family name with prefixes (tussenvoegsels), e.g. 'van der Berg'."
    )
    given_names: str | None = Field(default=None, description="Given names.")
    date_of_birth: str | None = Field(
        default=None,
        description="Date of birth, YYYY-MM-DD.",
        json_schema_extra={"format": "date"},
    )


class SignalCreate(ApiModel):
    reference: str = Field(
        description="The partner's own report number: 1-64 printable characters, no personal data."
    )
    category: str = Field(description="A category of the active policy (GET /v1/policy).")
    subject: SubjectIn | None = Field(
        default=None, description="The subject's identifiers; or, for blind submission, matchKeys."
    )
    match_keys: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Blind submission (RFC 9497 VOPRF), instead of `subject`: the unblinded "
            "evaluations by key family, `{FAMILY: element}` (base64url ristretto255 "
            "element), a list of elements for the multi-valued families; and `keyId`, the "
            "`keyId` of GET /v1/oprf/key they were evaluated under (optional; without it the "
            "current key is assumed). Elements under an earlier key are moved to the "
            "current one; an unknown keyId is a 409 oprf-key-changed: evaluate again."
        ),
        json_schema_extra={
            "additionalProperties": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "maxItems": 40},
                ]
            }
        },
    )
    payload: dict[str, Any] = Field(
        description=(
            "JWE in the JSON Serialization (RFC 7516 §7.2), A256GCM, one recipient per key of "
            "every organisation the policy requires for the category."
        )
    )


class ReceiptOut(ApiModel):
    leaf_hash: str = Field(description="Base64 RFC 9162 leaf hash of this action's audit entry.")


class SignalOut(ApiModel):
    id: str
    organisation: str
    reference: str
    category: str
    status: str = Field(
        description="active, withdrawn or expired; erased in the response to a signal in a "
        "test category (nothing of it is kept)."
    )
    created_at: datetime
    expires_at: datetime
    linkage_keys: list[str] = Field(description="Which match-key families were derived.")
    receipt: ReceiptOut | None = Field(
        default=None, description="Present on write responses: the audit receipt."
    )


class SignalPage(ApiModel):
    items: list[SignalOut]
    next: str | None = Field(description="Cursor of the next page; null on the last page.")


class PageQuery(ApiModel):
    cursor: str | None = Field(default=None, description="Opaque cursor from `next`.")
    limit: int = Field(default=50, ge=1, le=500, description="Page size, 1-500.")
