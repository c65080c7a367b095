"""The matching outbox's cost: CPU per processed row, for a miss and for a hit.

    .venv/bin/python bench/bench_outbox.py                  # SQLite, 3 rounds of 500 rows
    .venv/bin/python bench/bench_outbox.py --profile        # and the cProfile top
    KETENPOORT_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/bench_outbox.py              # PostgreSQL (a fresh schema)

Each round builds a fresh database, stores and drains `--stored` earlier signals (the
population), then stores `--signals` signals through `gateway.signals.service.
create_signal`, each keyed by the real pseudonymiser with every family of the default
policy's category; about `--hits` of them are about a person an earlier signal of
another organisation named (so matches are created and grown), the rest about new
people. Then, under the real policy's hit rule, the first half of the rows is done one
at a time (`process_next`), timing each row's own transaction apart for rows that
changed a match (hits) and rows that did not (misses), and the rest is drained as the
background job does (`process_outbox`, `BATCH` rows a call): the CPU of this process
per row of that drain, and its wall time. On PostgreSQL the server's own CPU is not in
the CPU figure. Prints figures only.

`--busy-threads 4` runs four threads that only compute beside the processor, as a
worker's request threads do under load (then read the wall figures: theirs is in the
CPU); `--switch-interval` sets `sys.setswitchinterval` for the run.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas import fresh_schema  # noqa: E402

from gateway.crypto import oprf  # noqa: E402
from gateway.db import Database  # noqa: E402
from gateway.demo.people import valid_bsn  # noqa: E402
from gateway.matching.jobs import BATCH  # noqa: E402
from gateway.matching.processor import (  # noqa: E402
    hit_policy_of,
    process_next,
    process_outbox,
)
from gateway.matching.service import HitPolicy  # noqa: E402
from gateway.migrate import upgrade_to_head  # noqa: E402
from gateway.policy.engine import PolicyEngine  # noqa: E402
from gateway.policy.loader import load_policy  # noqa: E402
from gateway.pseudonyms import Pseudonymiser  # noqa: E402
from gateway.signals.service import NewSignal, create_signal  # noqa: E402
from tests.signals.factory import KINDS, PAYLOAD  # noqa: E402

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TODAY = date(2026, 3, 1)
CATEGORY = "possible-victim"
ORGANISATIONS = sorted(KINDS)
SYLLABLES = ["ber", "dam", "ko", "lin", "ma", "ver", "hof", "sen", "jan", "wel", "dijk", "bos"]
GIVEN = ["Anna", "Sanne", "Daan", "Noah", "Lotte", "Sem", "Emma", "Finn", "Julia", "Lucas"]


@dataclass(frozen=True)
class Person:
    subject: dict[str, str]


def person(rng: random.Random) -> Person:
    family = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
    born = date(1990, 1, 1).toordinal() + rng.randrange(9000)
    subject = {
        "familyName": family,
        "givenNames": rng.choice(GIVEN),
        "dateOfBirth": date.fromordinal(born).isoformat(),
    }
    if rng.random() < 0.5:
        subject["bsn"] = valid_bsn(rng)
    return Person(subject)


def families() -> list[str]:
    policy = load_policy(ROOT / "policies" / "twente.yaml")
    return list(policy.policy.categories[CATEGORY].linkage_keys)


def store(
    db: Database,
    pseudonymiser: Pseudonymiser,
    keyed_by: list[str],
    people: list[tuple[str, Person]],
) -> None:
    """One transaction per signal, as the submission's view commits it."""
    for organisation, who in people:
        pseudonyms = pseudonymiser.linkage_pseudonyms(who.subject, today=TODAY, families=keyed_by)
        with db.transaction() as session:
            create_signal(
                session,
                NewSignal(
                    organisation=organisation,
                    organisation_kind=KINDS[organisation],
                    reference=f"R-{random.getrandbits(32):08x}",
                    category=CATEGORY,
                    pseudonyms=pseudonyms,
                    pseudonym_key_id=pseudonymiser.kid or "psk-1",
                    payload=PAYLOAD,
                    retention_days=365,
                ),
                now=NOW,
            )


def plan(
    rng: random.Random, known: list[tuple[str, Person]], count: int, hits: float
) -> list[tuple[str, Person]]:
    """`count` signals: about `hits` of them about a known person (each as likely),
    from another organisation than the first that named them; the rest about new
    people, who join `known`."""
    planned: list[tuple[str, Person]] = []
    for _ in range(count):
        if known and rng.random() < hits:
            first, who = rng.choice(known)
            organisation = rng.choice([o for o in ORGANISATIONS if o != first])
        else:
            organisation, who = rng.choice(ORGANISATIONS), person(rng)
            known.append((organisation, who))
        planned.append((organisation, who))
    return planned


@dataclass
class Round:
    #: CPU of the drain (the second half of the rows), per row: what the job spends.
    drain_ms: float
    #: CPU of each row's own transaction (`process_next`, the first half of the rows),
    #: for misses and hits.
    miss_ms: list[float]
    hit_ms: list[float]
    wall_ms: float


def drain_timed(
    db: Database, hit_policy: HitPolicy, rows: int, profiler: cProfile.Profile | None
) -> Round:
    """Do the first half of the `rows` one at a time (`process_next`), timing each, then
    drain the rest as the background job does (`process_outbox`, BATCH rows a call)."""
    miss: list[float] = []
    hit: list[float] = []
    if profiler:
        profiler.enable()
    for _ in range(rows // 2):
        cpu = time.process_time()
        done = process_next(db, hit_policy)
        spent = (time.process_time() - cpu) * 1000
        assert done is not None
        (hit if done.changes else miss).append(spent)
    wall, cpu = time.perf_counter(), time.process_time()
    drained = 0
    while True:
        batch = len(process_outbox(db, hit_policy, limit=BATCH))
        drained += batch
        if batch < BATCH:
            break
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler:
        profiler.disable()
    return Round(cpu * 1000 / drained, miss, hit, wall * 1000 / drained)


@contextmanager
def database(tmp: Path, n: int) -> Iterator[Database]:
    """SQLite in `tmp`, or a fresh schema of KETENPOORT_BENCH_DATABASE_URL (dropped)."""
    base = os.environ.get("KETENPOORT_BENCH_DATABASE_URL")
    if not base:
        db = Database(f"sqlite:///{tmp / f'outbox-{n}.db'}")
        try:
            upgrade_to_head(db.engine)
            yield db
        finally:
            db.dispose()
        return
    with fresh_schema(base, "outbox") as url:
        db = Database(url)
        try:
            upgrade_to_head(db.engine)
            yield db
        finally:
            db.dispose()


def one_round(
    args: argparse.Namespace, n: int, tmp: Path, profiler: cProfile.Profile | None
) -> Round:
    rng = random.Random(args.seed + n)
    pseudonymiser = Pseudonymiser(oprf.random_scalar(), kid="psk-1")
    keyed_by = families()
    hit_policy = hit_policy_of(PolicyEngine(load_policy(ROOT / "policies" / "twente.yaml")))
    with database(tmp, n) as db:
        known: list[tuple[str, Person]] = []
        store(db, pseudonymiser, keyed_by, plan(rng, known, args.stored, args.hits))
        process_outbox(db, hit_policy)
        store(db, pseudonymiser, keyed_by, plan(rng, known, args.signals, args.hits))
        with busy(args.busy_threads):
            return drain_timed(db, hit_policy, args.signals, profiler)


@contextmanager
def busy(threads: int) -> Iterator[None]:
    """`threads` threads that only compute meanwhile, as a gunicorn worker's request
    threads do under load beside its background jobs (the GIL's share is the question:
    each round trip gives it up). Their CPU counts in the process's, so with them only
    the wall figures say anything."""
    stop = threading.Event()

    def spin() -> None:
        total = 0
        while not stop.is_set():
            total += sum(i * i for i in range(1000))

    spinners = [threading.Thread(target=spin, daemon=True) for _ in range(threads)]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()


def summary(label: str, timings: list[float]) -> str:
    if not timings:
        return f"{label}: none"
    return (
        f"{label}: {statistics.mean(timings):.2f} ms CPU per row"
        f" (median {statistics.median(timings):.2f}, n={len(timings)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=500)
    parser.add_argument("--stored", type=int, default=500)
    parser.add_argument("--hits", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--busy-threads", type=int, default=0, help="threads that only compute meanwhile"
    )
    parser.add_argument(
        "--switch-interval", type=float, default=None, help="sys.setswitchinterval (seconds)"
    )
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    backend = "PostgreSQL" if os.environ.get("KETENPOORT_BENCH_DATABASE_URL") else "SQLite"
    profiler = cProfile.Profile() if args.profile else None
    print(
        f"matching outbox on {backend}: {args.signals} rows per round, ~{args.hits:.0%} hits"
        + (
            f"; beside {args.busy_threads} busy threads (read the wall figures)"
            if args.busy_threads
            else ""
        )
    )
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory() as folder:
        for n in range(args.rounds):
            found = one_round(args, n, Path(folder), profiler)
            rounds.append(found)
            print(
                f"  round {n + 1}: drain {found.drain_ms:.2f} ms CPU per row"
                f" (wall {found.wall_ms:.2f}); {summary('misses', found.miss_ms)};"
                f" {summary('hits', found.hit_ms)}"
            )
    figures = {
        "drain": [r.drain_ms for r in rounds],
        "misses": [statistics.mean(r.miss_ms) for r in rounds if r.miss_ms],
        "hits": [statistics.mean(r.hit_ms) for r in rounds if r.hit_ms],
    }
    for label, values in figures.items():
        if values:
            print(
                f"{label:>7}: {statistics.median(values):.2f} ms CPU per row (median of rounds;"
                f" spread {min(values):.2f}-{max(values):.2f})"
            )
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(50)
        stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
