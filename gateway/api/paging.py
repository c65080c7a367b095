"""The one paging codec of the API: opaque, bounded cursors over an ordered integer key.

Every cursor the API gives out (signals, matches, notifications, audit entries, and any
later collection) is made and read here, so there is one format, one bound and one
`invalid-cursor` problem. A cursor is base64url of `k1:<decimal key>`; it decodes only
to a non-negative integer below 2**63 (a BIGINT, so no database ever sees a value it
would refuse), and anything longer than a cursor we could have made is refused before
it is decoded. What the key means is the caller's: the last row of the previous page
(keyset paging, `WHERE key > :after`) or the first index of the next page (the log).

Collections a partner pages through (its signals, its notifications, its shares) use
`CursorCodec` instead: the same key, wrapped under a secret of the instance, so that a
cursor (and a notification's id) shows no counter over everyone's rows. A plain row id
would tell a partner how many rows other organisations caused in between, and where
one of its own actions made a second row for someone else (the meldpunt's copy of an
expiry notice for a signal that was ever in a match), whether it had matched.

This module imports nothing but the error types and `cryptography`: services and views
both use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from gateway.errors import FieldError, InvalidInput

T = TypeVar("T")

#: The largest key (and the largest `start`, `index` or tree size the API takes): a
#: signed 64-bit integer, the type of every key column.
MAX_KEY: Final = 2**63 - 1
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
_PREFIX: Final = "k1:"
#: `k1:` and 19 digits is 22 bytes, 30 base64 characters; nothing longer is a cursor of ours.
MAX_CURSOR_LENGTH: Final = 32
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")
#: A wrapped cursor (`CursorCodec`): 24 bytes in base64url without padding.
_WRAPPED_LENGTH: Final = 32
#: `KeyStore.derive_secret` label of the secret `CursorCodec`s wrap under.
CURSOR_SECRET_LABEL: Final = "paging-cursors/v1"  # noqa: S105 - a label


class InvalidCursor(InvalidInput):
    """A paging cursor the API did not give out (the one class for every endpoint)."""

    slug = "invalid-cursor"
    title = "The paging cursor is not valid"

    def __init__(self, parameter: str = "cursor") -> None:
        super().__init__(
            f"The value of '{parameter}' is not a cursor this API issued.",
            errors=[FieldError(f"/{parameter}", "Not a cursor this API issued", parameter)],
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    #: The cursor for the next page, or None when this page is the last one.
    next: str | None


def encode_cursor(key: int) -> str:
    """The opaque cursor for `key` (0 ≤ key ≤ MAX_KEY)."""
    if not 0 <= key <= MAX_KEY:
        raise ValueError("a cursor key is a non-negative 64-bit integer")
    raw = f"{_PREFIX}{key}".encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str | None, *, parameter: str = "cursor") -> int:
    """The key a cursor encodes (0 when there is none: the first page).

    Refuses (InvalidCursor, a 400) anything this module could not have made: overlong
    text, characters outside base64url, other content, leading zeros, keys ≥ 2**63.
    """
    if cursor is None or cursor == "":
        return 0
    if len(cursor) > MAX_CURSOR_LENGTH or not _BASE64URL.match(cursor):
        raise InvalidCursor(parameter)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidCursor(parameter) from None
    digits = raw[len(_PREFIX) :]
    if (
        not raw.startswith(_PREFIX)
        or not 1 <= len(digits) <= 19
        or not digits.isascii()
        or not digits.isdigit()
        or (len(digits) > 1 and digits[0] == "0")
    ):
        raise InvalidCursor(parameter)
    key = int(digits)
    if key > MAX_KEY:
        raise InvalidCursor(parameter)
    return key


class CursorCodec:
    """Opaque cursors for one kind of collection: the key and a tag of the kind, 16 bytes
    wrapped with AES key wrap (RFC 3394) under a secret of the instance: 24 bytes, 32
    base64url characters. Deterministic (one key, one cursor), unreadable without the
    secret, and checked on the way back (the wrap's integrity check and the tag), so a
    cursor of another collection or a made-up one is `invalid-cursor`."""

    def __init__(self, secret: bytes, kind: str) -> None:
        if len(secret) != 32:
            raise ValueError("a cursor secret is 32 bytes")
        self._secret = secret
        self._tag = hashlib.sha256(f"ketenpoort-cursor-v1:{kind}".encode()).digest()[:8]

    def encode(self, key: int) -> str:
        """The cursor for `key` (0 ≤ key ≤ MAX_KEY)."""
        if not 0 <= key <= MAX_KEY:
            raise ValueError("a cursor key is a non-negative 64-bit integer")
        wrapped = aes_key_wrap(self._secret, key.to_bytes(8, "big") + self._tag)
        return base64.urlsafe_b64encode(wrapped).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str | None, *, parameter: str = "cursor") -> int:
        """The key a cursor of this codec holds (0 when there is none: the first page);
        `InvalidCursor` (a 400) for anything else."""
        if cursor is None or cursor == "":
            return 0
        if len(cursor) != _WRAPPED_LENGTH or not _BASE64URL.match(cursor):
            raise InvalidCursor(parameter)
        try:
            raw = aes_key_unwrap(self._secret, base64.urlsafe_b64decode(cursor + "=" * 4))
        except (binascii.Error, ValueError, InvalidUnwrap):
            raise InvalidCursor(parameter) from None
        if raw[8:] != self._tag:
            raise InvalidCursor(parameter)
        key = int.from_bytes(raw[:8], "big")
        if key > MAX_KEY:
            raise InvalidCursor(parameter)
        return key


def clamp_limit(limit: int | None) -> int:
    """A page size within 1..MAX_LIMIT (DEFAULT_LIMIT when none is given)."""
    if limit is None:
        return DEFAULT_LIMIT
    return max(1, min(MAX_LIMIT, limit))
