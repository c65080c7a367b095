"""The `ketenpoort` command line: init is idempotent, errors are one line on stderr."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gateway import crypto
from gateway.cli import main
from tests.integration.live import free_port


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        "KETENPOORT_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
        "KETENPOORT_KEYS_DIR": str(tmp_path / "keys"),
        "KETENPOORT_MASTER_KEY": crypto.b64url(secrets.token_bytes(32)),
        "KETENPOORT_LOG_FORMAT": "json",
    }


def test_init_twice_creates_then_keeps(tmp_path: Path) -> None:
    runner = CliRunner()
    env = env_for(tmp_path)
    first = runner.invoke(main, ["init", "--json"], env=env)
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout[first.stdout.index("{") :])
    assert len(data["keysCreated"]) == 4 and data["migration"]
    second = runner.invoke(main, ["init", "--json"], env=env)
    assert json.loads(second.stdout[second.stdout.index("{") :])["keysCreated"] == []


def test_bad_setting_is_one_line_on_stderr(tmp_path: Path) -> None:
    env = {**os.environ, **env_for(tmp_path), "KETENPOORT_ISSUER": "nope"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "init"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: KETENPOORT_ISSUER: must be an absolute http(s) URL such as "
        "https://ketenpoort.example.nl"
    ]
    assert result.stdout == ""


def test_serve_without_keys_fails_clearly(tmp_path: Path) -> None:
    env = {**os.environ, **env_for(tmp_path)}
    env.pop("KETENPOORT_MASTER_KEY")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "error:" in result.stderr and "ketenpoort init" in result.stderr


def test_version_json() -> None:
    result = CliRunner().invoke(main, ["version", "--json"])
    assert json.loads(result.stdout)["apiVersion"] == "1.0.0"
