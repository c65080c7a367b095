"""Benchmark: tokens issued per second and API authorisations checked per second,
with and without DPoP, in-process (Flask test client, one thread).

    .venv/bin/python bench/bench_oauth.py            # SQLite in a temporary folder
    KETENPOORT_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/bench_oauth.py        # PostgreSQL (uses a fresh schema)

Client assertions and DPoP proofs are built before the clock starts, so the figures are
the gateway's work: request parsing, signature checks, the replay cache and audit
writes in the database, token signing. "Authorisations" call the token validator that
every /v1 request goes through (signature, claims, revocation and client lookup, DPoP
proof and its replay entry), without a view behind it.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.bootstrap import initialise  # noqa: E402
from gateway.config import RateLimit, Settings  # noqa: E402
from gateway.services import close_app  # noqa: E402
from tests.oauth.support import register_partner  # noqa: E402

ISSUER = "http://127.0.0.1:8080"
TOKENS = int(os.environ.get("BENCH_TOKENS", "300"))
CHECKS = int(os.environ.get("BENCH_CHECKS", "1000"))


def database_url(folder: Path) -> tuple[str, str | None]:
    base = os.environ.get("KETENPOORT_BENCH_DATABASE_URL")
    if not base:
        return f"sqlite:///{folder / 'bench.db'}", None
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with create_engine(base, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return f"{base}?options={quote(f'-csearch_path={schema}')}", schema


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.1f}/s  ({seconds * 1000 / count:6.2f} ms each, n={count})"


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="ketenpoort-bench-"))
    url, schema = database_url(folder)
    settings = Settings(
        database_url=url,
        keys_dir=folder / "keys",
        issuer=ISSUER,
        master_key=secrets.token_bytes(32),
        log_format="json",
        log_level="WARNING",
        rate_limit_per_client=RateLimit(rate=1e6, burst=1_000_000),
        token_rate_limit_per_client=RateLimit(rate=1e6, burst=1_000_000),
        failures_per_address=1_000_000,
    )
    initialise(settings)
    app = create_app(settings=settings)
    validator = app.extensions["ketenpoort"].token_validator
    client = app.test_client()
    partner = register_partner(app, "police")
    print(f"database: {url.split('?')[0].split('@')[-1]}  ({'PostgreSQL' if schema else 'SQLite'})")

    for dpop in (False, True):
        forms = [partner.form() for _ in range(TOKENS)]
        proofs = [partner.dpop_proof("POST", f"{ISSUER}/oauth/token") for _ in range(TOKENS)]
        started = time.perf_counter()
        for form, proof in zip(forms, proofs, strict=True):
            response = client.post(
                "/oauth/token", data=form, headers={"DPoP": proof} if dpop else {}
            )
            assert response.status_code == 200, response.get_data(as_text=True)
        elapsed = time.perf_counter() - started
        label = "tokens issued" + (" (DPoP)" if dpop else "")
        print(f"{label:26} {rate(TOKENS, elapsed)}")

    for dpop in (False, True):
        body = partner.request_token(client, dpop=dpop).get_json()
        token, scheme = body["access_token"], body["token_type"]
        requests = []
        for _ in range(CHECKS):
            headers = {"Authorization": f"{scheme} {token}"}
            if dpop:
                headers["DPoP"] = partner.dpop_proof(
                    "GET", f"{ISSUER}/v1/directory", access_token=token
                )
            requests.append(headers)
        started = time.perf_counter()
        for headers in requests:
            with app.test_request_context("/v1/directory", headers=headers):
                actor = validator.authenticate(("directory:read",))
                assert actor.id == partner.client_id
        elapsed = time.perf_counter() - started
        label = "API authorisations" + (" (DPoP)" if dpop else "")
        print(f"{label:26} {rate(CHECKS, elapsed)}")

    close_app(app)
    if schema:
        base = os.environ["KETENPOORT_BENCH_DATABASE_URL"]
        with create_engine(base, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    main()
