"""A throwaway PostgreSQL cluster of the test's own, which it may stop and start.

The shared server (127.0.0.1:5432) serves every other test and helper: it is never
stopped. This one is made with `initdb` in a temporary folder and started with
`pg_ctl` on a port the OS hands out; PostgreSQL refuses to run as root, so as root it
runs as the `postgres` user. Without the binaries the tests are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.live import free_port


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return versions[0].parent if versions else None


@dataclass
class Cluster:
    bin_dir: Path
    data: Path
    port: int
    user: str | None  # run as this user (we are root), or as ourselves

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data / "db"), "-o", options, "-l", str(self.data / "log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """`fast`: disconnect every client and stop; `immediate`: as a crash."""
        self._run("pg_ctl", "-D", str(self.data / "db"), "-m", mode, "-w", "-t", "60", "stop")


@contextlib.contextmanager
def own_cluster() -> Iterator[Cluster]:
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) to run a cluster of our own")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and `runuser` is missing to run PostgreSQL as postgres")
        user = "postgres"
    data = Path(tempfile.mkdtemp(prefix="ketenpoort-pg-"))
    if user:
        shutil.chown(data, user, user)
    cluster = Cluster(bin_dir, data, free_port(), user)
    try:
        cluster._run(
            "initdb", "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop("immediate")
        shutil.rmtree(data, ignore_errors=True)
