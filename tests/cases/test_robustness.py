"""Any JSON sent to the cases and shares API is a 4xx problem or a success, never a 500."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cases.conftest import World

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "title": JSON,
        "signalIds": JSON,
        "matchId": JSON,
        "organisations": JSON,
        "purpose": JSON,
        "status": JSON,
        "assignee": JSON,
        "outcome": JSON,
        "reason": JSON,
        "signalId": JSON,
        "text": JSON,
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.one_of(JSON, FIELDS), target=st.sampled_from(["create", "share", "patch", "link"]))
def test_no_body_causes_a_500(
    world: World, headers: dict[str, str], body: Any, target: str
) -> None:
    case_id = world.app.config["TEST_CASE_ID"]
    method, path = {
        "create": ("post", "/v1/cases"),
        "share": ("post", f"/v1/cases/{case_id}/shares"),
        "patch": ("patch", f"/v1/cases/{case_id}"),
        "link": ("post", f"/v1/cases/{case_id}/signals"),
    }[target]
    response = getattr(world.client, method)(path, json=body, headers=headers)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cursor=st.text(max_size=40), limit=st.text(max_size=8))
def test_no_query_causes_a_500(
    world: World, headers: dict[str, str], cursor: str, limit: str
) -> None:
    for path in ("/v1/cases", "/v1/shares"):
        response = world.client.get(
            path, query_string={"cursor": cursor, "limit": limit}, headers=headers
        )
        assert response.status_code < 500
