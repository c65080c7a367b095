"""Cursors are opaque and parse strictly: a round trip holds, anything else is a 400.

The plain codec pages the meldpunt's collections (matches, cases) and the audit log
(whose indices are public); what partners page through (signals, notifications,
shares) uses the wrapped codec, which shows no row id (`gateway.api.paging`).
"""

from __future__ import annotations

import base64
import contextlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.api.paging import (
    MAX_CURSOR_LENGTH,
    MAX_KEY,
    MAX_LIMIT,
    CursorCodec,
    InvalidCursor,
    clamp_limit,
    decode_cursor,
    encode_cursor,
)
from gateway.signals.errors import InvalidCursor as SignalsInvalidCursor

URL_SAFE = set(string.ascii_letters + string.digits + "-_")


@given(st.integers(min_value=0, max_value=MAX_KEY))
def test_round_trip(key: int) -> None:
    """A cursor decodes to its key, is URL-safe base64 without padding, and is never the
    bare number (it may still contain the key's digits by chance: see below)."""
    cursor = encode_cursor(key)
    assert decode_cursor(cursor) == key
    assert cursor and set(cursor) <= URL_SAFE and len(cursor) <= MAX_CURSOR_LENGTH
    assert cursor != str(key) and not cursor.isdigit()


def test_a_cursor_may_contain_the_digits_of_its_key() -> None:
    """Why the property above no longer says `str(key) not in cursor`: that was false,
    e.g. for key 6, whose cursor happens to contain a "6"."""
    cursor = encode_cursor(6)
    assert "6" in cursor and decode_cursor(cursor) == 6


@given(st.text())
def test_any_text_decodes_or_is_an_invalid_cursor(text: str) -> None:
    try:
        key = decode_cursor(text, parameter="after")
    except InvalidCursor as error:
        assert error.errors[0].parameter == "after" and error.status == 400
        assert error.slug == "invalid-cursor"
    else:
        assert 0 <= key <= MAX_KEY


@given(st.binary(max_size=64))
def test_any_base64_decodes_to_a_bounded_key_or_is_refused(raw: bytes) -> None:
    cursor = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    try:
        key = decode_cursor(cursor)
    except InvalidCursor:
        pass
    else:
        assert 0 <= key <= MAX_KEY and (cursor == "" or encode_cursor(key) == cursor)


@pytest.mark.parametrize(
    "raw",
    [
        f"k1:{2**63}",
        f"k1:{10**24}",
        "k1:" + "9" * 4301,
        "k1:-1",
        "k1:007",
        "k1:",
        "k1:1e3",
        "k1:١٢",
        "i5",
        "hello",
    ],
)
def test_crafted_cursors_are_refused(raw: str) -> None:
    cursor = base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


def test_a_key_beyond_bigint_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_cursor(2**63)
    with pytest.raises(InvalidCursor):
        decode_cursor(base64.urlsafe_b64encode(f"k1:{2**63}".encode()).decode())


def test_overlong_and_non_base64_cursors_are_refused() -> None:
    for cursor in ("A" * (MAX_CURSOR_LENGTH + 1), "a" * 10_000, "!!!", "azE6Ng==", "a b"):
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor)


def test_one_invalid_cursor_problem() -> None:
    assert SignalsInvalidCursor is InvalidCursor


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None) == 0 and decode_cursor("") == 0


@pytest.mark.parametrize(
    ("given_", "used"), [(None, 50), (0, 1), (-5, 1), (7, 7), (10**6, MAX_LIMIT)]
)
def test_limit_is_clamped(given_: int | None, used: int) -> None:
    assert clamp_limit(given_) == used


# -- the codec of what partners page through ---------------------------------------------

SECRET = bytes(range(32))


@given(st.integers(min_value=0, max_value=MAX_KEY))
def test_a_wrapped_cursor_round_trips_and_shows_nothing_of_its_key(key: int) -> None:
    """Unlike the plain codec, a partner cannot read the row id out of the cursor: the
    key is wrapped under the instance's secret, with a tag of its collection."""
    codec = CursorCodec(SECRET, "notifications")
    cursor = codec.encode(key)
    assert codec.decode(cursor) == key
    assert set(cursor) <= URL_SAFE and len(cursor) == MAX_CURSOR_LENGTH
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)  # not the plain format


def test_a_wrapped_cursor_of_another_collection_secret_or_made_up_is_invalid() -> None:
    codec = CursorCodec(SECRET, "notifications")
    cursor = codec.encode(7)
    for foreign in (
        CursorCodec(SECRET, "signals").encode(7),
        CursorCodec(bytes(32), "notifications").encode(7),
        encode_cursor(7),
        cursor[:-1] + ("A" if cursor[-1] != "A" else "B"),
        cursor + "A",
        "A" * MAX_CURSOR_LENGTH,
    ):
        with pytest.raises(InvalidCursor):
            codec.decode(foreign, parameter="after")
    assert codec.decode(None) == codec.decode("") == 0


@given(st.text(max_size=40))
def test_a_wrapped_cursor_decoder_refuses_any_text_with_a_400(text: str) -> None:
    """Any text decodes to a key or is `invalid-cursor`, never another exception."""
    codec = CursorCodec(SECRET, "signals")
    with contextlib.suppress(InvalidCursor):
        assert 0 <= codec.decode(text) <= MAX_KEY
