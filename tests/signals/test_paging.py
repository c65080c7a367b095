"""Cursors are opaque and parse strictly: a round trip holds, anything else is a 400."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.signals.errors import InvalidCursor
from gateway.signals.paging import MAX_LIMIT, clamp_limit, decode_cursor, encode_cursor

URL_SAFE = set(string.ascii_letters + string.digits + "-_")


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_round_trip(key: int) -> None:
    """A cursor decodes to its key, is URL-safe base64 without padding, and is never the
    bare number (it may still contain the key's digits by chance: see below)."""
    cursor = encode_cursor(key)
    assert decode_cursor(cursor) == key
    assert cursor and set(cursor) <= URL_SAFE
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
    else:
        assert key >= 0


def test_a_key_beyond_bigint_is_refused() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(2**63))


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None) == 0 and decode_cursor("") == 0


@pytest.mark.parametrize(
    ("given_", "used"), [(None, 50), (0, 1), (-5, 1), (7, 7), (10**6, MAX_LIMIT)]
)
def test_limit_is_clamped(given_: int | None, used: int) -> None:
    assert clamp_limit(given_) == used
