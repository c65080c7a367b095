"""The matching-outbox processor as a background job of every gateway, and the drain
before reads.

The background job runs `process_outbox` every half second (sooner while busy); the
request that stored a signal never waits for it. Reads that must show what earlier
requests caused (the meldpunt's matches and notifications) drain the outbox first, as
the audit views sequence pending entries first.

A partner's read drains only when the policy lets that partner's kind learn of hits
anyway: a read that did the matching would take longer for a hit than for a miss, so
a partner that may not learn of hits never triggers it and hears of its own signals'
expiries through the background job.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import g

from gateway.actors import Actor
from gateway.db import Database
from gateway.jobs import BackgroundJob
from gateway.logs import get_logger
from gateway.matching.processor import hit_policy_of, process_outbox
from gateway.policy.engine import PolicyEngine
from gateway.services import services

log = get_logger(__name__)

JOB = "matching_outbox"
INTERVAL_SECONDS = 0.5
BATCH = 100
#: At most this many rows are done by one read; the background job does the rest.
CATCH_UP_ROWS = 500
MELDPUNT = "meldpunt"


class OutboxJob(BackgroundJob):
    """Processes the matching outbox; skips its turn while another process does it."""

    name = "matching-outbox"

    def __init__(
        self, db: Database, engine: PolicyEngine, interval: float = INTERVAL_SECONDS
    ) -> None:
        super().__init__(interval)
        self._db = db
        self._engine = engine

    def step(self) -> bool:
        done = process_outbox(self._db, hit_policy_of(self._engine), limit=BATCH, wait=False)
        return len(done) >= BATCH


def drainer(db: Database, engine: PolicyEngine) -> Callable[[], None]:
    """The bounded drain a read runs first (`MatchService.list(..., fresh=True)`): at most
    `CATCH_UP_ROWS` rows; one cheap query when nothing is pending."""
    hit_policy = hit_policy_of(engine)

    def drain() -> None:
        process_outbox(db, hit_policy, limit=CATCH_UP_ROWS)

    return drain


def catch_up(reader: Actor | None = None) -> None:
    """Do the pending matching work before a read, so it sees every earlier submission.

    Call it before the request's own session starts (on SQLite the drain needs the
    write lock). `reader`: a partner whose kind the policy tells no hits is not made to
    wait for (and so cannot time) the matching of anyone's signal.
    """
    svc = services()
    engine = svc.policy.engine
    if (
        reader is not None
        and reader.organisation_kind != MELDPUNT
        and not engine.tells_hit(reader.organisation_kind)
    ):
        return
    if svc.db.is_sqlite and g.get("db_session") is not None:
        # The request holds SQLite's write lock already: draining now would wait for
        # it until the busy timeout. The background job catches up instead.
        log.warning("matching outbox: catch_up called after the request's session began")
        return
    process_outbox(svc.db, hit_policy_of(engine), limit=CATCH_UP_ROWS)
