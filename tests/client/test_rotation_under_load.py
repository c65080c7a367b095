"""Each key rotation under concurrent load, against a live gateway on every test backend:
partner threads keep submitting (plain and blind) and reading (their signals, the signed
checkpoint as witnesses) while `ketenpoort keys rotate KIND` runs; no valid request is
refused and the audit log verifies afterwards. Bounded: about two seconds of load each."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from gateway.cli import main
from gateway.client import PartnerClient
from gateway.demo.people import people
from tests.audit.test_verify import cli_env
from tests.client.conftest import enrol
from tests.client.test_partner_rotation import _rotate
from tests.client.test_witness import _wait_until_sequenced
from tests.integration.live import LiveGateway

LOAD_SECONDS = 1.0  # of load before the rotation, and again after it


class Recorded(requests.Session):
    """A session that keeps every refusal it is answered with (status >= 400)."""

    def __init__(self, refusals: list[str]) -> None:
        super().__init__()
        self.refusals = refusals

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        response = super().request(method, url, *args, **kwargs)
        if response.status_code >= 400:
            kind = ""
            if response.headers.get("Content-Type", "").startswith("application/problem+json"):
                kind = str(response.json().get("type", "")).rsplit("/", 1)[-1]
            self.refusals.append(f"{method!s} {url!s} {response.status_code} {kind}")
        return response


def _work(client: PartnerClient, stop: threading.Event, errors: list[str]) -> Callable[[], None]:
    def run() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                person = people(1, seed=random.randrange(2**32))[0]
                created = client.submit_signal(
                    f"BVH-{n}", "possible-victim", person.subject(), {"n": n}
                )
                assert client.signal(created["id"])["id"] == created["id"]
                client.checkpoint()  # the witness read, with the pinned log key
            except Exception as exc:  # every failure is a refused valid request
                errors.append(f"{type(exc).__name__}: {exc}")
                return

    return run


def _receipts(clients: list[PartnerClient]) -> int:
    return sum(len(c.state.receipts) for c in clients)


@pytest.mark.parametrize("kind", ["token-signing", "checkpoint", "encryption", "pseudonym"])
def test_a_rotation_under_concurrent_load_refuses_nothing_and_the_log_verifies(
    own_gateway: LiveGateway, tmp_path: Path, kind: str
) -> None:
    refusals: list[str] = []
    errors: list[str] = []
    clients = [
        enrol(own_gateway, "police", tmp_path).client(http=Recorded(refusals)),
        enrol(own_gateway, "police", tmp_path).client(http=Recorded(refusals)),
        enrol(own_gateway, "care", tmp_path).client(http=Recorded(refusals), blind=True),
    ]
    for client in clients:
        client.checkpoint()  # tokens, directory and the log key before the load starts
    stop = threading.Event()
    threads = [threading.Thread(target=_work(c, stop, errors)) for c in clients]
    for thread in threads:
        thread.start()
    try:
        time.sleep(LOAD_SECONDS)
        before = _receipts(clients)
        rotated = _rotate(own_gateway, kind)
        during = _receipts(clients)
        time.sleep(LOAD_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert rotated["kid"] and rotated["retired"]
    assert errors == []
    assert refusals == []
    assert before > 0 and _receipts(clients) > during  # load before and after it

    # the database verifier reads checkpoints, then entries: let the gateway's own
    # sequencer finish first, or it may number entries in between (a race of the reader)
    _wait_until_sequenced(own_gateway.settings.database_url)
    verified = CliRunner().invoke(
        main, ["audit", "verify", "--no-progress", "--json"], env=cli_env(own_gateway.settings)
    )
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["ok"] is True
