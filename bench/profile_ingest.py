"""Profile: one signal's in-process cost through the Flask test client (no server).

    .venv/bin/python bench/profile_ingest.py            # ms per signal
    .venv/bin/python bench/profile_ingest.py --profile  # and the cProfile top 40

Builds a fresh SQLite gateway in a temporary directory, registers a partner, fetches a
real access token and pre-builds the bodies (JWE envelopes for the meldpunt and the
category's recipients) before the clock starts; then posts them. Prints figures only.
Knobs: PROFILE_SIGNALS (default 300); PROFILE_IDEMPOTENCY=1 sends an Idempotency-Key
with every signal, as the partner client does. KETENPOORT_BENCH_DATABASE_URL picks
PostgreSQL: a fresh schema in it, dropped afterwards. Prints the wall and the CPU time
of this process per signal (on PostgreSQL the server's own CPU is not in the latter).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas import fresh_schema  # noqa: E402

from gateway.app import create_app  # noqa: E402
from gateway.bootstrap import initialise  # noqa: E402
from gateway.config import Settings  # noqa: E402
from gateway.crypto.jwe import encrypt_for_recipients  # noqa: E402
from gateway.services import close_app  # noqa: E402
from tests.oauth.support import register_partner  # noqa: E402

SIGNALS = int(os.environ.get("PROFILE_SIGNALS", "300"))
IDEMPOTENCY = os.environ.get("PROFILE_IDEMPOTENCY", "") not in {"", "0"}


@contextmanager
def database(tmp: Path) -> Iterator[str]:
    """SQLite in `tmp`, or a fresh schema of KETENPOORT_BENCH_DATABASE_URL (dropped)."""
    base = os.environ.get("KETENPOORT_BENCH_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp / 'k.db'}"
        return
    with fresh_schema(base, "profile") as schema_url:
        yield schema_url


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    with database(tmp) as url:
        run(tmp, url)


def run(tmp: Path, url: str) -> None:
    settings = Settings(
        database_url=url,
        keys_dir=tmp / "keys",
        policy=ROOT / "policies" / "twente.yaml",
        issuer="http://127.0.0.1:8080",
        master_key=secrets.token_bytes(32),
        log_format="json",
        testing=True,
        background_jobs=False,
    )
    initialise(settings)
    app = create_app(settings=settings)
    client = app.test_client()
    scopes = "signals:write signals:read notifications:read directory:read"
    partner = register_partner(app, "police", scopes)
    token = partner.request_token(client, scope=scopes).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    policy = client.get("/v1/policy", headers=headers).get_json()
    directory = client.get("/v1/directory", headers=headers).get_json()["organisations"]
    required = set(policy["categories"]["possible-victim"]["requiredRecipients"]) | {"meldpunt"}
    keys = [k for o in directory if o["id"] in required for k in o["encryptionKeys"]["keys"]]
    bodies: list[dict[str, Any]] = []
    for i in range(SIGNALS + 20):
        bodies.append(
            {
                "reference": f"BVH-{i:06d}",
                "category": "possible-victim",
                "subject": {
                    "familyName": f"Jansen{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}",
                    "givenNames": "Sanne",
                    "dateOfBirth": "2009-04-17",
                },
                "payload": encrypt_for_recipients(b'{"summary": "zorgen"}', keys),
            }
        )
    for b in bodies[:20]:  # warm up
        response = client.post("/v1/signals", json=b, headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)
    sent = [
        {**headers, "Idempotency-Key": str(uuid.uuid4())} if IDEMPOTENCY else headers
        for _ in bodies[20:]
    ]
    profiler = cProfile.Profile() if "--profile" in sys.argv else None
    start, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for b, h in zip(bodies[20:], sent, strict=True):
        response = client.post("/v1/signals", json=b, headers=h)
        assert response.status_code == 201, response.get_data(as_text=True)
    if profiler:
        profiler.disable()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    keyed = " with an Idempotency-Key" if IDEMPOTENCY else ""
    print(
        f"in-process ingest: {SIGNALS} signals{keyed}, {elapsed / SIGNALS * 1000:.2f} ms per"
        f" signal, CPU of this process {cpu / SIGNALS * 1000:.2f} ms"
    )
    close_app(app)
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
