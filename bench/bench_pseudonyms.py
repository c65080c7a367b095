"""How fast pseudonyms are derived, against the bare group operation.

Prints, per operation, the time per call and calls per second (best of several
interleaved batches, one core):
- the bare ristretto255 scalar multiplication in libsodium (the floor),
- hash-to-group (expand_message_xmd SHA-512 + the RFC 9496 map),
- one pseudonym (hash-to-group + validated scalar multiplication),
- normalisation and match keys alone,
- a whole subject (normalise, two match keys, two pseudonyms),
- a whole subject through every linkage family (what a signal costs since issue 14),
- one rotation step (k'·k⁻¹ times a stored element).

Run: .venv/bin/python bench/bench_pseudonyms.py [--seconds 0.3] [--rounds 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date

import pysodium  # only for the bare-libsodium baseline; the gateway goes via gateway.crypto

from gateway.crypto import generate_ristretto255_scalar, oprf
from gateway.pseudonyms import Pseudonymiser, derive_match_keys
from gateway.pseudonyms.matchkeys import derive_linkage_keys

SUBJECT = {
    "bsn": "123456782",
    "familyName": "van der Berg",
    "givenNames": "Anna Maria",
    "dateOfBirth": "2008-02-29",
}
TODAY = date(2025, 6, 1)


def calibrate(call: Callable[[], object], seconds: float) -> int:
    """How many calls take about `seconds`."""
    n, elapsed = 1, 0.0
    while elapsed < seconds / 10:  # double the batch until it is measurable
        n *= 2
        start = time.perf_counter()
        for _ in range(n):
            call()
        elapsed = time.perf_counter() - start
    return max(1, int(n * seconds / elapsed))


def measure_all(
    calls: dict[str, Callable[[], object]], seconds: float, rounds: int
) -> dict[str, float]:
    """Best time per call for each operation; rounds interleave the operations so
    that load from other processes hits them all alike."""
    batches = {name: calibrate(call, seconds) for name, call in calls.items()}
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(batches[name]):
                call()
            best[name] = min(best[name], (time.perf_counter() - start) / batches[name])
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one batch")
    parser.add_argument("--rounds", type=int, default=7, help="batches per operation")
    args = parser.parse_args()

    scalar = generate_ristretto255_scalar()
    element = oprf.hash_to_group(b"bench")
    key = "ketenpoort:v1:bsn:123456782"
    p = Pseudonymiser(scalar, kid="bench")
    rotation = p.rotation_to(Pseudonymiser(generate_ristretto255_scalar(), kid="bench-2"))
    stored = p.pseudonym(key)

    calls: dict[str, Callable[[], object]] = {
        "bare libsodium scalarmult": lambda: pysodium.crypto_scalarmult_ristretto255(
            scalar, element
        ),
        "hash_to_group": lambda: oprf.hash_to_group(key.encode()),
        "pseudonym (one match key)": lambda: p.pseudonym(key),
        "normalise + match keys": lambda: derive_match_keys(SUBJECT, today=TODAY),
        "subject -> 2 pseudonyms": lambda: p.pseudonyms(SUBJECT, today=TODAY),
        "subject -> every family": lambda: p.linkage_pseudonyms(SUBJECT, today=TODAY),
        "rotate one stored element": lambda: rotation.apply(stored),
    }
    results = measure_all(calls, args.seconds, args.rounds)
    bare = results["bare libsodium scalarmult"]
    print(f"{'operation':<28} {'µs/call':>9} {'calls/s':>10} {'x bare op':>10}")
    for name, per_call in results.items():
        print(f"{name:<28} {per_call * 1e6:>9.1f} {1 / per_call:>10.0f} {per_call / bare:>10.2f}")
    per_key = results["pseudonym (one match key)"]
    print(
        f"\npseudonyms derived per second (one core): {1 / per_key:,.0f}; "
        f"per subject with both keys: {1 / results['subject -> 2 pseudonyms']:,.0f}"
    )
    every = sum(len(v) for v in derive_linkage_keys(SUBJECT, today=TODAY).values())
    per_signal = results["subject -> every family"]
    print(
        f"a signal with every linkage family ({every} keys): {per_signal * 1e3:.2f} ms, "
        f"{every / per_signal:,.0f} keys/s (goal: < 2 ms)"
    )


if __name__ == "__main__":
    main()
