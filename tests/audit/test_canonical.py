"""The entry encoder's fast path writes exactly what RFC 8785 (the `rfc8785` package)
writes, for any JSON value, and defers to it for what it cannot write alike."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.entries import MAX_SAFE_INTEGER, canonical_bytes

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _JSON, max_size=6))
def test_same_bytes_as_rfc8785(entry: dict[str, Any]) -> None:
    try:
        expected = rfc8785.dumps(entry)
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical_bytes(entry)
        return
    assert canonical_bytes(entry) == expected


@pytest.mark.parametrize(
    "entry",
    [
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order differs from code point order
        {"a": 1e21, "b": 1e-7, "c": 0.1},  # ECMAScript number forms
        {"s": '\x00\x1f\u2028"\\ \t\n'},
        {"t": (1, 2)},
    ],
)
def test_edge_cases(entry: dict[str, Any]) -> None:
    assert canonical_bytes(entry) == rfc8785.dumps(entry)


def test_lone_surrogate_and_unsafe_integer_are_refused() -> None:
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_bytes({"s": "\ud800"})
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical_bytes({"n": MAX_SAFE_INTEGER + 1})
