"""Base models and shared schemas of the HTTP API (lower camelCase on the wire)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from gateway.api.paging import InvalidCursor, decode_cursor

#: The pydantic error type of a paging cursor the API did not give out (`Cursor`).
CURSOR_ERROR = "invalid_cursor"


def _check_cursor(value: str | None) -> str | None:
    try:
        decode_cursor(value)
    except InvalidCursor:
        raise PydanticCustomError(CURSOR_ERROR, "Not a cursor this API issued") from None
    return value


#: A paging cursor in a query (`cursor`, `after`): checked with the other parameters,
#: so a bad cursor is listed with every other error of the query; alone it stays an
#: `invalid-cursor` (`gateway.api.validation.parse_query`).
Cursor = Annotated[str | None, AfterValidator(_check_cursor)]


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
