"""Errors the signal and matching services raise; the views render them as problem+json."""

from __future__ import annotations

from gateway.errors import FieldError, InvalidInput, UnprocessableContent


class IdempotencyKeyReused(UnprocessableContent):
    """The same `Idempotency-Key` came back with another body (RFC 9110 §15.5.21: 422)."""

    slug = "idempotency-key-reused"
    title = "The Idempotency-Key was used before with another request body"


class InvalidCursor(InvalidInput):
    slug = "invalid-cursor"
    title = "The paging cursor is not valid"

    def __init__(self, parameter: str) -> None:
        super().__init__(
            f"The value of '{parameter}' is not a cursor this API issued.",
            errors=[FieldError(f"/{parameter}", "Not a cursor this API issued", parameter)],
        )
