"""CLI start-up benchmark; prints figures (never asserts them).

Runs each command N times, round-robin with a bare `python -c pass` so that load on the
machine hits every command alike, and prints the median wall time of each and its ratio
to the bare interpreter (the goal: `ketenpoort --version` within 3x).

Usage: PYTHONPATH=$PWD .venv/bin/python bench/bench_cli_startup.py [--runs 21] [--root DIR]
(`--root` measures another checkout, e.g. an older commit's worktree, for a before/after.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "ketenpoort --version": ["-m", "gateway", "--version"],
    "ketenpoort version": ["-m", "gateway", "version"],
    "ketenpoort --help": ["-m", "gateway", "--help"],
    "ketenpoort partner --help": ["-m", "gateway", "partner", "--help"],
    "ketenpoort policy --help": ["-m", "gateway", "policy", "--help"],
    "ketenpoort audit verify --help": ["-m", "gateway", "audit", "verify", "--help"],
}


def _once(args: list[str], env: dict[str, str], root: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs of each command")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    options = parser.parse_args()
    runs, root = options.runs, options.root.resolve()
    env = {**os.environ, "PYTHONPATH": str(root)}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for args in COMMANDS.values():  # warm the file cache and the bytecode
        _once(args, env, root)
    for _ in range(runs):
        for name, args in COMMANDS.items():
            times[name].append(_once(args, env, root))
    bare = statistics.median(times["python -c pass"])
    print(f"CLI start-up of {root}, median of {runs} runs each")
    print(f"({sys.executable}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    print(f"{'command':<32} {'median ms':>10} {'min ms':>8} {'x bare':>7}")
    for name, found in times.items():
        median = statistics.median(found)
        print(f"{name:<32} {median * 1000:>10.1f} {min(found) * 1000:>8.1f} {median / bare:>7.2f}")


if __name__ == "__main__":
    main()
