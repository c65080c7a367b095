"""Two partners submit the same person at the same moment, over HTTP, to a live gunicorn
server with several workers: the coordinator still sees exactly one match holding both
signals. Run on SQLite and PostgreSQL (where the two requests truly run in parallel and
only the pseudonym locks keep them from creating two matches).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.client import PartnerClient
from gateway.demo.people import people
from tests.conftest import MELDPUNT_SCOPES
from tests.integration.live import LiveGateway, live_gateway, signal_body

ROUNDS = 6


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[LiveGateway]:
    with live_gateway(database_url, tmp_path, workers=2, threads=4) as live:
        yield live


def test_simultaneous_submissions_make_one_match_with_both_signals(
    gateway: LiveGateway,
) -> None:
    police = gateway.register("police", "police")
    care = gateway.register("zorg-twente", "care")
    meldpunt = gateway.register("meldpunt", "meldpunt", MELDPUNT_SCOPES)
    for client in (police, care, meldpunt):
        client.access_token()  # discovery and a DPoP-bound token, before the race

    persons = people(ROUNDS)
    assert len({(p.family_name, p.date_of_birth) for p in persons}) == ROUNDS  # all distinct
    expected: list[set[str]] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for n, person in enumerate(persons):
            bodies = [
                (police, signal_body(police, f"BVH-{n}", person.subject())),
                # the care partner knows no BSN: the match is on name and date of birth too
                (care, signal_body(care, f"JH-{n}", person.subject(with_bsn=n % 2 == 0))),
            ]
            barrier = threading.Barrier(len(bodies))
            results = list(pool.map(lambda pair, b=barrier: _submit(b, *pair), bodies))
            assert all(r["status"] == "active" for r in results)
            expected.append({r["id"] for r in results})

    matches = list(_all_matches(meldpunt))
    found = [{s["id"] for s in m["signals"]} for m in matches]
    assert sorted(map(sorted, found)) == sorted(map(sorted, expected)), (
        f"{len(found)} matches for {ROUNDS} people submitted twice at once: {found}"
    )
    for match in matches:
        assert "name_dob" in match["linkageKeys"]
        assert {s["organisation"] for s in match["signals"]} == {"police", "zorg-twente"}
    # the coordinator was told once per match; the default policy tells no partner
    coordinator = meldpunt.notifications()
    assert sorted(n["matchId"] for n in coordinator if n["type"] == "match") == sorted(
        m["id"] for m in matches
    )
    assert police.notifications() == [] and care.notifications() == []


def _submit(
    barrier: threading.Barrier, client: PartnerClient, body: dict[str, Any]
) -> dict[str, Any]:
    """Wait for the other partner, then POST: both requests leave at the same moment."""
    barrier.wait(timeout=10)
    response = client.request(
        "POST", "/signals", json_body=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    created: dict[str, Any] = response.json()
    return created


def _all_matches(client: PartnerClient) -> Iterator[dict[str, Any]]:
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.request("GET", "/matches", params=params).json()
        yield from page["items"]
        cursor = page.get("next")
        if not cursor:
            return
