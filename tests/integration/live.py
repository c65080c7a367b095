"""A live gateway for integration tests: `python -m gateway serve` in a subprocess.

The server runs gunicorn with its workers, exactly as in production, on 127.0.0.1;
partners are registered in its database beforehand and talk to it over HTTP with
`gateway.client.PartnerClient`.

Ports never collide, whatever else runs on the machine (another suite, a demo on
18400): the test binds a socket to port 0 — the OS hands out a free port — and gives
that very socket to gunicorn by systemd socket activation (`LISTEN_FDS`, fd 3), so no
other process can take the port between choosing it and serving on it. The issuer URL
(and so the port) must be known before the gateway is initialised, which is why the
socket is bound here rather than by gunicorn.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from gateway.bootstrap import initialise
from gateway.client import PartnerClient
from gateway.config import Settings
from gateway.crypto.jwe import encrypt_for_recipients
from gateway.db import Database
from gateway.partners.registry import add_client, add_organisation, get_organisation
from gateway.server import JOBS_STARTED
from tests.oauth.support import ADMIN, DEFAULT_SCOPES, enc_key, new_key, public_of

ROOT = Path(__file__).resolve().parents[2]
#: Starts `ketenpoort serve` with the inherited socket at fd 3 (systemd's first passed
#: descriptor, where gunicorn looks) and the socket-activation variables naming this
#: very process (gunicorn checks LISTEN_PID).
_SERVE_ON_FD = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "if fd != 3:\n"
    "    os.dup2(fd, 3)\n"
    "    os.close(fd)\n"
    "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid()))\n"
    "from gateway.cli import main\n"
    "sys.argv = ['ketenpoort', *sys.argv[2:]]\n"
    "main()\n"
)


_JOBS_STARTED = re.compile(re.escape(JOBS_STARTED).replace(re.escape("%s"), r"(\d+)"))


def jobs_pids(log: str) -> list[int]:
    """The jobs processes a `ketenpoort serve` log says its arbiter started, in order."""
    return [int(pid) for pid in _JOBS_STARTED.findall(log)]


def bound_socket(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to a port the OS hands out (port 0), not yet listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS hands out, for a server that binds it itself (the demo): the port
    is free now, and the OS does not hand it out again while it is idle."""
    with bound_socket(host) as probe:
        port: int = probe.getsockname()[1]
        return port


def register_in_database(
    database_url: str,
    org: str,
    kind: str,
    *,
    encryption_keys: list[dict[str, Any]],
    signing_keys: list[dict[str, Any]],
    scopes: str,
    name: str | None = None,
) -> str:
    """Register `org` (if new; named `name`, else `org` capitalised) and a client with
    `signing_keys` straight in the database, as an administrator would, without DPoP;
    returns the client id. One place, so every live test enrols partners alike."""
    database = Database(database_url)
    try:
        with database.transaction() as session:
            if get_organisation(session, org) is None:
                add_organisation(
                    session,
                    org_id=org,
                    name=org.capitalize() if name is None else name,
                    kind=kind,
                    encryption_keys=encryption_keys,
                    actor=ADMIN,
                )
            client_id: str = add_client(
                session,
                org_id=org,
                signing_keys=signing_keys,
                scopes=tuple(scopes.split()),
                require_dpop=False,
                actor=ADMIN,
            ).client_id
    finally:
        database.dispose()
    return client_id


def signal_body(client: PartnerClient, reference: str, subject: dict[str, str]) -> dict[str, Any]:
    """A whole `POST /signals` body (payload encrypted for the recipients), built before
    a race so that only the POST is timed."""
    return {
        "reference": reference,
        "category": "possible-victim",
        "subject": subject,
        "payload": encrypt_for_recipients(
            b'{"summary": "zorgen"}', client.recipient_keys("possible-victim")
        ),
    }


@dataclass
class LiveGateway:
    issuer: str
    settings: Settings
    process: subprocess.Popen[bytes]
    log_path: Path

    def register(
        self, org: str, kind: str, scopes: str = DEFAULT_SCOPES, **client_options: Any
    ) -> PartnerClient:
        """Register `org` (if new) and a client; returns a `PartnerClient` for it."""
        private = new_key("ES256")
        enc_private, enc_public = enc_key()
        client_id = register_in_database(
            self.settings.database_url,
            org,
            kind,
            encryption_keys=[enc_public],
            signing_keys=[public_of(private)],
            scopes=scopes,
        )
        return PartnerClient(
            self.issuer, client_id, private, enc_private, scope=scopes, **client_options
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def env(self) -> dict[str, str]:
        """The environment of this instance, for `ketenpoort` admin commands."""
        return _env(self.settings)


def instance_settings(
    database_url: str, keys_dir: Path, issuer: str, *, log_level: str = "INFO"
) -> Settings:
    """A new test instance's settings: the default policy, a fresh master key, JSON logs
    (every live gateway, fault harness and soak builds the same)."""
    return Settings(
        database_url=database_url,
        keys_dir=keys_dir,
        policy=ROOT / "policies" / "twente.yaml",
        issuer=issuer,
        master_key=secrets.token_bytes(32),
        log_format="json",
        log_level=log_level,
    )


@contextlib.contextmanager
def live_gateway(
    database_url: str,
    tmp_path: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    log_level: str = "INFO",
) -> Iterator[LiveGateway]:
    """Initialise a gateway on `database_url`, serve it on a port the OS hands out,
    wait until ready, stop it. The port is in `LiveGateway.issuer` and its log."""
    listener = bound_socket()
    port = listener.getsockname()[1]
    issuer = f"http://127.0.0.1:{port}"
    settings = instance_settings(database_url, tmp_path / "live-keys", issuer, log_level=log_level)
    try:
        initialise(settings)
    except BaseException:
        listener.close()
        raise
    process, log_path = _serve(settings, listener, tmp_path, workers=workers, threads=threads)
    # the child holds the socket now; ours is closed by leaving the `with`
    gateway = LiveGateway(issuer, settings, process, log_path)
    try:
        _wait_until_ready(gateway)
        yield gateway
    finally:
        _stop(process)


def _serve(
    settings: Settings,
    listener: socket.socket,
    tmp_path: Path,
    *,
    workers: int,
    threads: int,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], Path]:
    """`ketenpoort serve` on `listener` (handed over as fd 3; closed here afterwards)."""
    port = listener.getsockname()[1]
    env = {**os.environ, **_env(settings), **(extra_env or {})}
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(name, None)
    log_path = tmp_path / f"gateway-{port}.log"
    with listener, log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _SERVE_ON_FD,
                str(listener.fileno()),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
            pass_fds=(listener.fileno(),),
        )
    return process, log_path


@dataclass
class LiveCluster:
    """Several `ketenpoort serve` processes on one database, as behind a load balancer:
    all share one public address (the issuer), which is process 0's; `urls` are each
    process's own address."""

    gateways: list[LiveGateway]
    urls: list[str]

    @property
    def issuer(self) -> str:
        return self.gateways[0].issuer

    @property
    def settings(self) -> Settings:
        return self.gateways[0].settings

    def register(
        self, org: str, kind: str, scopes: str = DEFAULT_SCOPES, **client_options: Any
    ) -> PartnerClient:
        return self.gateways[0].register(org, kind, scopes, **client_options)

    def log(self) -> str:
        return "\n".join(g.log() for g in self.gateways)


@contextlib.contextmanager
def live_cluster(
    database_url: str,
    tmp_path: Path,
    *,
    processes: int = 2,
    workers: int = 1,
    threads: int = 4,
    extra_env: dict[str, str] | None = None,
) -> Iterator[LiveCluster]:
    """`processes` gateway processes (each with its workers and background jobs) on
    one database; the database is initialised (migrations, keys) once, beforehand, and
    every process shares the key folder and master key, as a deployment would."""
    listeners = [bound_socket() for _ in range(processes)]
    urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in listeners]
    settings = instance_settings(database_url, tmp_path / "live-keys", urls[0])
    gateways: list[LiveGateway] = []
    try:
        initialise(settings)
        for sock in list(listeners):
            listeners.remove(sock)
            process, log_path = _serve(
                settings, sock, tmp_path, workers=workers, threads=threads, extra_env=extra_env
            )
            gateways.append(LiveGateway(settings.issuer, settings, process, log_path))
        for gateway, url in zip(gateways, urls, strict=True):
            _wait_until_ready(gateway, url=url)
        yield LiveCluster(gateways, urls)
    finally:
        for sock in listeners:
            sock.close()
        for gateway in gateways:
            _stop(gateway.process)


def _env(settings: Settings) -> dict[str, str]:
    assert settings.master_key is not None
    return {
        "KETENPOORT_DATABASE_URL": settings.database_url,
        "KETENPOORT_KEYS_DIR": str(settings.keys_dir),
        "KETENPOORT_MASTER_KEY": base64.urlsafe_b64encode(settings.master_key)
        .rstrip(b"=")
        .decode(),
        "KETENPOORT_ISSUER": settings.issuer,
        "KETENPOORT_POLICY": str(settings.policy),
        "KETENPOORT_LOG_FORMAT": "json",
    }


def _wait_until_ready(
    gateway: LiveGateway, timeout: float = 30.0, *, url: str | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"the gateway exited early:\n{gateway.log()[-4000:]}")
        try:
            if requests.get(f"{url or gateway.issuer}/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the gateway was not ready in {timeout} s:\n{gateway.log()[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to gunicorn's arbiter (it stops its workers); SIGKILL the group if stuck."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
