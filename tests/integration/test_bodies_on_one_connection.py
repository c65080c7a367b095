"""Request bodies at and over the limit, on a live gunicorn server and one connection.

A client (and a test suite) reuses its connection: a refusal must not leave it broken.
gunicorn drains at most 64 KiB of a body the app did not read and then closes the
connection, although its response said keep-alive; the gateway reads the rest itself.
"""

from __future__ import annotations

from pathlib import Path

import requests

from tests.integration.live import live_gateway

LIMIT = 256 * 1024


def _body(size: int) -> bytes:
    body = b'{"reference":"' + b"x" * (size - 16) + b'"}'
    assert len(body) == size
    return body


def test_a_body_of_exactly_the_limit_is_read_and_a_refused_one_leaves_the_connection_usable(
    tmp_path: Path,
) -> None:
    with live_gateway(f"sqlite:///{tmp_path / 'g.db'}", tmp_path, workers=1, threads=2) as live:
        token = live.register("police", "police", dpop=False).access_token()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        url = f"{live.issuer}/v1/signals"
        with requests.Session() as session:
            # read and judged on its content: a 400, not a 413
            exact = session.post(url, data=_body(LIMIT), headers=headers, timeout=30)
            assert exact.status_code == 400, exact.text
            assert exact.json()["type"].endswith("/problems/invalid-input")
            for size in (LIMIT + 1, LIMIT + 300_000):
                over = session.post(url, data=_body(size), headers=headers, timeout=30)
                assert over.status_code == 413
                assert over.json()["type"].endswith("/problems/payload-too-large")
                # the same connection carries the next request
                assert session.get(f"{live.issuer}/healthz", timeout=30).status_code == 200
            # a refusal before the body is read (no token) too
            refused = session.post(url, data=_body(200_000), headers={}, timeout=30)
            assert refused.status_code in (401, 415)
            assert session.get(f"{live.issuer}/healthz", timeout=30).status_code == 200
