"""NL API Design Rules conventions on every response, and problem+json on every error."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway import API_VERSION
from gateway.api.conventions import parse_traceparent
from tests.conftest import TEST_ISSUER

SECURITY = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def assert_problem(response, status: int, slug: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["type"] == f"{TEST_ISSUER}/problems/{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["instance"] == response.headers["X-Request-Id"]
    assert response.headers["API-Version"] == API_VERSION
    return body


@pytest.mark.parametrize("path", ["/healthz", "/v1/openapi.json", "/v1/missing", "/readyz"])
def test_every_response_has_version_security_and_ids(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["API-Version"] == API_VERSION
    for name, value in SECURITY.items():
        assert response.headers[name] == value
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["X-Request-Id"])
    traceparent = response.headers["traceparent"]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", traceparent)


@pytest.mark.parametrize("path", ["/static/style.css", "/v1/oprf/key", "/metrics", "/login"])
def test_no_response_is_kept_in_a_cache(client: FlaskClient, path: str) -> None:
    """`Cache-Control: no-store` on every response (DESIGN.md), also on what Flask would
    send as `no-cache` (static files) and on public, unchanging answers."""
    response = client.get(path)
    assert response.status_code == 200, path
    assert response.headers["Cache-Control"] == "no-store"


def test_unknown_path_is_problem_404(client: FlaskClient) -> None:
    assert_problem(client.get("/v1/does-not-exist"), 404, "not-found")


def test_trailing_slash_is_404_not_redirect(client: FlaskClient) -> None:
    assert_problem(client.get("/v1/openapi.json/"), 404, "not-found")
    assert_problem(client.get("/healthz/"), 404, "not-found")


def test_method_not_allowed_names_allowed_methods(client: FlaskClient) -> None:
    response = client.delete("/v1/openapi.json")
    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD"}


def test_unacceptable_accept_is_406(client: FlaskClient) -> None:
    response = client.get("/v1/openapi.json", headers={"Accept": "application/xml"})
    assert_problem(response, 406, "not-acceptable")
    ok = client.get("/v1/openapi.json", headers={"Accept": "application/json;q=0.9, */*;q=0.1"})
    assert ok.status_code == 200


def test_request_id_is_always_our_own(client: FlaskClient) -> None:
    """Security finding 10: a caller's X-Request-Id is kept apart (`callerRequestId` in
    audit entries), never used as ours."""
    response = client.get("/healthz", headers={"X-Request-Id": "partner-req-000123"})
    assert response.headers["X-Request-Id"] != "partner-req-000123"
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["X-Request-Id"])
    bad = client.get("/healthz", headers={"X-Request-Id": "bad id <script>"})
    assert bad.headers["X-Request-Id"] != "bad id <script>"
    assert re.fullmatch(r"[0-9a-f-]{36}", bad.headers["X-Request-Id"])


def test_traceparent_is_parsed_but_our_trace_is_our_own(client: FlaskClient) -> None:
    """Security finding 10: the caller's trace is kept as the caller's (audit `caller`),
    ours is restarted (W3C Trace Context allows a restart at a trust boundary)."""
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = client.get("/healthz", headers={"traceparent": incoming})
    version, trace_id, span_id, flags = response.headers["traceparent"].split("-")
    assert trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert span_id != "00f067aa0ba902b7"
    assert (version, flags) == ("00", "01")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ],
)
def test_invalid_traceparent_starts_a_new_trace(value: str | None) -> None:
    trace = parse_traceparent(value)
    assert trace.parent_span_id is None
    assert re.fullmatch(r"[0-9a-f]{32}", trace.trace_id)
    assert trace.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_future_traceparent_version_is_continued() -> None:
    trace = parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more")
    assert trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_openapi_is_open_with_cors_only_there(client: FlaskClient) -> None:
    assert client.get("/v1/openapi.json").headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in client.get("/healthz").headers


def test_internal_error_is_problem_500_without_internals(app: Flask) -> None:
    @app.get("/v1/boom")
    def boom() -> str:
        raise RuntimeError("secret internal state: /etc/ketenpoort/db-password")

    response = app.test_client().get("/v1/boom")
    body = assert_problem(response, 500, "internal-error")
    assert "secret" not in response.get_data(as_text=True)
    assert "RuntimeError" not in body["detail"]


def test_problem_type_uri_is_documented(client: FlaskClient) -> None:
    page = client.get("/problems/not-found")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert "Resource not found" in page.get_data(as_text=True)
    assert_problem(client.get("/problems/no-such-problem"), 404, "not-found")


def test_docs_page_works_offline(client: FlaskClient) -> None:
    page = client.get("/docs")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Ketenpoort API" in html
    assert "openapi.json" in html
    # no external resources: every src/href is local or the contact link
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/") or "ketenpoort.example.nl" in url, url
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_metrics_count_requests(client: FlaskClient) -> None:
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'ketenpoort_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert "ketenpoort_http_request_duration_seconds_bucket" in text


def test_made_up_methods_do_not_grow_the_metrics(client: FlaskClient) -> None:
    """Any token is a method on the wire; each label value would be a series for life."""
    for n in range(20):
        client.open("/healthz", method=f"PROBE{n}")
    text = client.get("/metrics").get_data(as_text=True)
    assert "PROBE" not in text
    assert 'method="other"' in text


def test_readyz_ready_then_503_when_a_key_is_missing(app: Flask, client: FlaskClient) -> None:
    assert client.get("/readyz").get_json() == {"status": "ready"}
    keys_dir = app.extensions["ketenpoort"].keys.directory
    for path in keys_dir.glob("pseudonym-*.json"):
        path.unlink()
    response = client.get("/readyz")
    body = assert_problem(response, 503, "service-unavailable")
    assert "pseudonym" in body["detail"]
    assert response.headers["Retry-After"] == "5"
