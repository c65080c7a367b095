"""Two `ketenpoort serve` processes (each with its worker and background jobs) on one
PostgreSQL database, as behind a load balancer: whatever a partner did at one process
holds at the other — DPoP proof and client assertion replay, revocation, idempotency,
the rate limit, the matching outbox (one match, told once) and the audit log (one
sequence, one sequencer at a time through its advisory lock, and it verifies).

Both processes serve one public address (the issuer); the client balances itself,
sending a request to the process it chooses (`RoundRobin`, or a raw request to one
process's own port). PostgreSQL only: SQLite is one file on one host.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from gateway.audit.models import AuditEntryRow
from gateway.audit.note import VerifierKey
from gateway.audit.sequencer import ADVISORY_LOCK_ID
from gateway.audit.verify import verify_log
from gateway.audit.verify_rows import database_source
from gateway.client import PartnerClient
from gateway.db import Database, advisory_xact_lock
from gateway.demo.people import people
from tests.conftest import MELDPUNT_SCOPES, POSTGRES_URL, postgres_schema
from tests.integration.live import LiveCluster, live_cluster, register_in_database, signal_body
from tests.oauth.support import PartnerClient as RawPartner
from tests.oauth.support import enc_key, new_key, public_of

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="KETENPOORT_TEST_POSTGRES_URL is not set (no PostgreSQL run)"
)
#: Every client's budget of /v1 requests for the whole module (refilled once an hour).
BURST = 40
DIRECTORY = "/v1/directory"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    tmp_path = tmp_path_factory.mktemp("scaleout")
    with (
        postgres_schema("so") as url,
        live_cluster(
            url,
            tmp_path,
            processes=2,
            workers=1,
            threads=4,
            extra_env={"KETENPOORT_RATE_LIMIT_PER_CLIENT": f"1/h burst {BURST}"},
        ) as live,
    ):
        yield live


class RoundRobin(requests.Session):
    """A client-side balancer: each request for the public address goes to the next
    process in turn, or to `pinned`."""

    def __init__(self, public: str, urls: list[str]) -> None:
        super().__init__()
        self.public, self.urls = public, urls
        self.pinned: int | None = None
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        assert isinstance(url, str) and url.startswith(self.public)
        with self._lock:
            target = self.pinned if self.pinned is not None else next(self._turn) % len(self.urls)
        return super().request(method, self.urls[target] + url[len(self.public) :], *args, **kwargs)


def _partner(cluster: LiveCluster, org: str, scopes: str) -> RawPartner:
    """A registered client whose assertions and proofs the test builds itself."""
    private = new_key("ES256")
    client_id = register_in_database(
        cluster.settings.database_url,
        org,
        "police",
        encryption_keys=[enc_key()[1]],
        signing_keys=[public_of(private)],
        scopes=scopes,
    )
    return RawPartner(client_id, org, private, cluster.issuer)


def _token(partner: RawPartner, base: str, assertion: str | None = None) -> requests.Response:
    """A DPoP-bound token from the process at `base` (the proof names the public URL)."""
    proof = partner.dpop_proof("POST", f"{partner.issuer}/oauth/token")
    return requests.post(
        f"{base}/oauth/token",
        data=partner.form(assertion),
        headers={"DPoP": proof},
        timeout=10,
    )


def _api_headers(partner: RawPartner, token: str, path: str = DIRECTORY) -> dict[str, str]:
    proof = partner.dpop_proof("GET", f"{partner.issuer}{path}", access_token=token)
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def _get(base: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{base}{DIRECTORY}", headers=headers, timeout=10)


def test_a_client_assertion_used_at_one_process_is_refused_at_the_other(
    cluster: LiveCluster,
) -> None:
    first, second = cluster.urls
    partner = _partner(cluster, "assertion-org", "directory:read")
    assertion = partner.assertion()
    assert _token(partner, first, assertion).status_code == 200
    replayed = _token(partner, second, assertion)
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_client"


def test_a_dpop_proof_used_at_one_process_is_refused_at_the_other(
    cluster: LiveCluster,
) -> None:
    first, second = cluster.urls
    partner = _partner(cluster, "replay-org", "directory:read")
    token = _token(partner, first).json()["access_token"]
    once = _api_headers(partner, token)
    assert _get(first, once).status_code == 200
    replayed = _get(second, once)
    assert replayed.status_code == 401
    assert "invalid_dpop_proof" in replayed.headers["WWW-Authenticate"]
    assert _get(second, _api_headers(partner, token)).status_code == 200  # a fresh proof


def test_a_token_revoked_at_one_process_is_refused_at_the_other(cluster: LiveCluster) -> None:
    first, second = cluster.urls
    partner = _partner(cluster, "revoke-org", "directory:read")
    token = _token(partner, second).json()["access_token"]
    assert _get(first, _api_headers(partner, token)).status_code == 200
    assert _get(second, _api_headers(partner, token)).status_code == 200
    revoked = requests.post(
        f"{second}/oauth/revoke", data={**partner.form(), "token": token}, timeout=10
    )
    assert revoked.status_code == 200, revoked.text
    for base in (first, second):
        refused = _get(base, _api_headers(partner, token))
        assert refused.status_code == 401
        assert "invalid_token" in refused.headers["WWW-Authenticate"]


def test_the_rate_limit_is_one_budget_across_processes(cluster: LiveCluster) -> None:
    partner = _partner(cluster, "busy-org", "directory:read")
    token = _token(partner, cluster.urls[0]).json()["access_token"]
    statuses: dict[int, list[int]] = {0: [], 1: []}
    for n in range(BURST + 4):  # alternating: each process alone would allow BURST
        statuses[n % 2].append(_get(cluster.urls[n % 2], _api_headers(partner, token)).status_code)
    every = statuses[0] + statuses[1]
    assert every.count(200) == BURST, statuses
    assert every.count(429) == 4, statuses
    assert 429 in statuses[0] and 429 in statuses[1]


def _client(cluster: LiveCluster, org: str, kind: str, scopes: str | None = None) -> Any:
    http = RoundRobin(cluster.issuer, cluster.urls)
    extra = {"scopes": scopes} if scopes else {}
    client = cluster.register(org, kind, http=http, **extra)
    client.access_token()
    return client, http


def test_one_idempotency_key_at_both_processes_makes_one_signal(cluster: LiveCluster) -> None:
    police, http = _client(cluster, "police", "police")
    body = signal_body(police, "IDEM-1", people(1)[0].subject())
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    answers = []
    for process in (0, 1):
        http.pinned = process
        answers.append(police.request("POST", "/signals", json_body=body, headers=headers).json())
    http.pinned = None
    assert answers[0] == answers[1]
    assert [s["id"] for s in police.signals() if s["reference"] == "IDEM-1"] == [answers[0]["id"]]


def _until(found: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_the_matching_outbox_makes_each_match_once(cluster: LiveCluster) -> None:
    (police, police_http), (care, care_http) = (
        _client(cluster, "police", "police"),
        _client(cluster, "zorg-twente", "care"),
    )
    meldpunt, _ = _client(cluster, "meldpunt", "meldpunt", MELDPUNT_SCOPES)
    police_http.pinned, care_http.pinned = 0, 1  # the two partners at different processes
    persons = people(4)[1:]  # the first is the idempotency test's
    expected = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for n, person in enumerate(persons):
            bodies = [
                (police, signal_body(police, f"SO-BVH-{n}", person.subject())),
                (care, signal_body(care, f"SO-JH-{n}", person.subject())),
            ]
            barrier = threading.Barrier(2)

            def submit(pair: tuple[PartnerClient, dict[str, Any]], b: Any = barrier) -> str:
                b.wait(timeout=10)
                key = {"Idempotency-Key": str(uuid.uuid4())}
                return str(
                    pair[0].request("POST", "/signals", json_body=pair[1], headers=key).json()["id"]
                )

            expected.append(set(pool.map(submit, bodies)))

    def matches() -> list[set[str]]:
        items = meldpunt.request("GET", "/matches", params={"limit": 100}).json()["items"]
        return [{s["id"] for s in m["signals"]} for m in items]

    found = _until(lambda: (lambda m: m if len(m) >= len(persons) else None)(matches()))
    assert sorted(map(sorted, found or matches())) == sorted(map(sorted, expected))

    def told() -> list[str]:
        return [
            n["matchId"] for n in meldpunt.notifications(from_start=True) if n["type"] == "match"
        ]

    _until(lambda: len(told()) >= len(persons))
    time.sleep(1.0)  # both processes' outbox jobs had time to tell anyone twice
    notified = told()
    assert len(notified) == len(set(notified)) == len(persons)


def test_one_audit_log_one_sequencer_at_a_time(cluster: LiveCluster) -> None:
    database = Database(cluster.settings.database_url)
    partner = _partner(cluster, "audit-org", "directory:read")

    def pending() -> int:
        with database.session() as session:
            return int(
                session.execute(
                    select(func.count()).where(AuditEntryRow.seq.is_(None))
                ).scalar_one()
            )

    try:
        assert _until(lambda: pending() == 0), "both processes' sequencers stay behind"
        with database.transaction() as holder:  # the sequencers' advisory lock, held here
            advisory_xact_lock(holder, ADVISORY_LOCK_ID)
            for base in cluster.urls:  # a token issued at each process: an entry each
                assert _token(partner, base).status_code == 200
            time.sleep(1.0)  # four sequencer intervals: neither process may sequence
            assert pending() >= 2
        assert _until(lambda: pending() == 0), "the lock released, the entries are sequenced"
        with database.session() as session:
            count, distinct, top = session.execute(
                select(
                    func.count(AuditEntryRow.seq),
                    func.count(func.distinct(AuditEntryRow.seq)),
                    func.max(AuditEntryRow.seq),
                )
            ).one()
        assert top is not None and count == distinct == top + 1  # indices 0..top, none twice
        meldpunt, _ = _client(cluster, "meldpunt", "meldpunt", MELDPUNT_SCOPES)
        key = VerifierKey.parse(meldpunt.log_key())
        entries, notes, close = database_source(cluster.settings.database_url)
        try:
            report = verify_log(entries, notes, [key])
        finally:
            close()
        assert report.ok, report.findings
        assert report.entries >= count
    finally:
        database.dispose()
