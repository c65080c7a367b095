"""Envelope checks per second: a 4 KiB payload encrypted for 3 P-256 recipients.

Prints the full check (size, parse, directory, policy, meldpunt decryption) and its
parts, plus the client-side builder for comparison. Single process, single thread.

    .venv/bin/python bench/bench_envelope.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

from gateway.crypto import generate_p256_jwk, jwe
from gateway.signals.envelope import check_envelope


def measure(name: str, fn: Callable[[], object], seconds: float) -> float:
    for _ in range(20):  # warm up
        fn()
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            fn()
        count += 50
    elapsed = time.perf_counter() - start
    rate = count / elapsed
    print(f"{name:<46} {rate:>10,.0f} /s   {1e6 / rate:>8.1f} µs each")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    keys = {
        org: generate_p256_jwk(use="enc", alg="ECDH-ES+A256KW")
        for org in ("meldpunt", "politie", "zorg")
    }
    directory: dict[str, tuple[str, dict[str, Any]]] = {
        public["kid"]: (org, public) for org, (_private, public) in keys.items()
    }
    meldpunt_private = keys["meldpunt"][0]
    publics = [public for _private, public in keys.values()]
    plaintext = os.urandom(3072).hex()[:4096].encode()  # 4 KiB of text
    payload = jwe.encrypt_for_recipients(plaintext, publics)
    # The gateway sees the payload after the request JSON was parsed.
    payload = json.loads(json.dumps(payload))
    size = len(json.dumps(payload, separators=(",", ":")))
    parsed = jwe.parse_jwe(payload)

    def full_check() -> object:
        return check_envelope(
            payload,
            category_recipients={"meldpunt", "politie", "zorg"},
            directory=directory,
            meldpunt_private_jwk=meldpunt_private,
        )

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"payload: {len(plaintext)} B plaintext, {size} B JWE, 3 recipients (P-256)\n")
    rate = measure("check_envelope (everything)", full_check, args.seconds)
    measure(
        "  parse_jwe (structure, algs, 3 epk points)", lambda: jwe.parse_jwe(payload), args.seconds
    )
    measure(
        "  check_decrypts (meldpunt copy)",
        lambda: jwe.check_decrypts(parsed, meldpunt_private),
        args.seconds,
    )
    measure(
        "encrypt_for_recipients (client, 3 recipients)",
        lambda: jwe.encrypt_for_recipients(plaintext, publics),
        args.seconds,
    )
    print(f"\none core checks about {rate:,.0f} envelopes per second")


if __name__ == "__main__":
    main()
