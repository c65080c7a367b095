"""Opaque cursors for keyset paging over an ordered integer key.

A cursor names the last row of the previous page, so a page is one index range scan
(`WHERE key > :last ORDER BY key LIMIT n`), stable under inserts and complete. Cursors
are opaque (base64url) so that clients do not build them and we may change the key.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.signals.errors import InvalidCursor

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_PREFIX = "k1:"
_MAX_KEY = 2**63 - 1


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    #: The cursor for the next page, or None when this page is the last one.
    next: str | None


def encode_cursor(last_key: int) -> str:
    raw = f"{_PREFIX}{last_key}".encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str | None, *, parameter: str = "cursor") -> int:
    """The key after which the page starts (0 for the first page)."""
    if cursor is None or cursor == "":
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidCursor(parameter) from None
    if not raw.startswith(_PREFIX) or not raw[len(_PREFIX) :].isdigit():
        raise InvalidCursor(parameter)
    digits = raw[len(_PREFIX) :]
    if len(digits) > 19 or int(digits) > _MAX_KEY:  # a BIGINT, or PostgreSQL would refuse
        raise InvalidCursor(parameter)
    return int(digits)


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    return max(1, min(MAX_LIMIT, limit))
