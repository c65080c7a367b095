"""A live gateway for the browser tests, and the people who sign in to it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import requests
from argon2 import PasswordHasher
from sqlalchemy import select

from gateway.actors import cli_actor
from gateway.audit.models import AuditEntryRow
from gateway.bootstrap import initialise
from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyStore, load_master_key
from gateway.users.models import UserRow
from gateway.users.service import add_user
from tests.integration.live import _env, instance_settings

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
_LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")


@dataclass
class Person:
    name: str
    role: str
    password: str
    totp_secret: str

    def code(self, offset: int = 0) -> str:
        return pyotp.TOTP(self.totp_secret).at(time.time() + 30 * offset)


@dataclass
class WebGateway:
    base_url: str
    settings: Settings
    log_path: Path

    def person(self, role: str, *, changed: bool = True) -> Person:
        """A new user; `changed=False` leaves the one-time password to be replaced."""
        name = f"{role[:5]}.{secrets.token_hex(3)}"
        database = Database(self.settings.database_url)
        keys = KeyStore(
            self.settings.keys_dir,
            load_master_key(self.settings.keys_dir, self.settings.master_key, create=False),
        )
        try:
            with database.transaction() as session:
                created = add_user(session, keys, name=name, role=role, actor=cli_actor())
                password = created.one_time_password
                if changed:
                    password = "demo-" + secrets.token_urlsafe(12)
                    row = session.get(UserRow, created.id)
                    assert row is not None
                    row.password_hash = PasswordHasher().hash(password)
                    row.must_change_password = False
                    row.password_changed_at = datetime.now(UTC)
        finally:
            database.dispose()
        return Person(name, role, password, created.totp_secret)

    def audit(self, actor: str | None = None) -> list[dict[str, Any]]:
        """The audit entries (decoded), optionally only those of one actor id."""
        database = Database(self.settings.database_url)
        try:
            with database.transaction(write=False) as session:
                query = select(AuditEntryRow.data).order_by(AuditEntryRow.id)
                if actor is not None:
                    query = query.where(AuditEntryRow.actor_id == actor)
                return [json.loads(d) for d in session.execute(query).scalars()]
        finally:
            database.dispose()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def web_gateway(database_url: str, directory: Path, **environment: str) -> Iterator[WebGateway]:
    """Initialise and serve a gateway (gunicorn, port from the OS); stop it afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = instance_settings(database_url, directory / "keys", "http://127.0.0.1:8080")
    initialise(settings)
    env = {**os.environ, **_env(settings), **environment}
    log_path = directory / f"gateway-{secrets.token_hex(4)}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.web.serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        base_url = _wait_until_ready(process, log_path)
        yield WebGateway(base_url, settings, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + 60
    base_url = None
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited early:\n{text[-4000:]}")
        if base_url is None:
            found = _LISTENING.search(text)
            base_url = found.group(1) if found else None
        if base_url is not None:
            try:
                if requests.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    return base_url
            except requests.RequestException:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"the gateway was not ready:\n{log_path.read_text()[-4000:]}")
