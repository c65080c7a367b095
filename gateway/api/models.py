"""Base models and shared schemas of the HTTP API (lower camelCase on the wire)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Every request and response body: camelCase aliases, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class FieldErrorModel(ApiModel):
    pointer: str = Field(description="JSON Pointer (RFC 6901) to the offending value.")
    detail: str
    parameter: str | None = Field(
        default=None, description="The query parameter, when the error is in the query."
    )


class Problem(ApiModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(title="Problem", extra="allow")

    type: str = Field(description="Stable URI identifying the problem type.")
    title: str
    status: int
    detail: str
    instance: str = Field(description="The request id of the failed request.")
    errors: list[FieldErrorModel] | None = Field(
        default=None, description="Every invalid input found (400 only)."
    )
    rule: str | None = Field(
        default=None, description="`policy-denied`: the id of the policy rule that decided."
    )
