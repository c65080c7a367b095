"""Errors the signal and matching services raise; the views render them as problem+json."""

from __future__ import annotations

from gateway.api.paging import InvalidCursor as InvalidCursor  # the one cursor problem
from gateway.errors import UnprocessableContent


class IdempotencyKeyReused(UnprocessableContent):
    """The same `Idempotency-Key` came back with another body (RFC 9110 §15.5.21: 422)."""

    slug = "idempotency-key-reused"
    title = "The Idempotency-Key was used before with another request body"
