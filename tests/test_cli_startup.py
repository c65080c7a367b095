"""`ketenpoort --version`, `--help` and `partner --help` start at once: they import click
and the command tree, never the web stack, the database layer or the cryptography.

The modules are checked in a fresh interpreter (`sys.modules` after the command), not
timed: `bench/bench_cli_startup.py` prints the figures.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import gateway
from gateway.cli import shown_url

ROOT = Path(__file__).resolve().parent.parent

#: Top-level packages a start-up command must not load (each costs more than a bare
#: interpreter start; together they made every command take seconds).
HEAVY = (
    "alembic",
    "authlib",
    "cryptography",
    "flask",
    "jinja2",
    "joserfc",
    "psycopg",
    "pydantic",
    "requests",
    "rich",
    "sqlalchemy",
    "structlog",
    "werkzeug",
    "yaml",
)

_PROBE = """
import json, runpy, sys
out, sys.argv = sys.argv[1], ["ketenpoort", *sys.argv[2:]]
try:
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
with open(out, "w") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
"""


def _loaded(tmp_path: Path, *args: str) -> tuple[set[str], str]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(out.read_text())
    assert found["code"] in (0, None), done.stderr
    return set(found["modules"]), done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("version",),
        ("--help",),
        ("partner", "--help"),
        ("partner", "submit", "--help"),
        ("partners", "--help"),
        ("policy", "--help"),
        ("audit", "verify", "--help"),
    ],
)
def test_start_up_commands_import_nothing_heavy(tmp_path: Path, args: tuple[str, ...]) -> None:
    modules, output = _loaded(tmp_path, *args)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == [], f"ketenpoort {' '.join(args)} imported {heavy[:10]}"
    assert output  # the command still printed its version or help


def test_version_needs_no_package_metadata(tmp_path: Path) -> None:
    modules, output = _loaded(tmp_path, "--version")
    assert output == f"ketenpoort, version {gateway.__version__}\n"
    assert "importlib.metadata" not in modules
    assert not any(m == "gateway.db" or m.startswith("gateway.web") for m in modules)
    # the domain packages' command groups load when used, not to build the tree
    assert not {"gateway.audit.cli", "gateway.client.cli", "gateway.policy.cli"} & modules


def test_help_still_lists_every_command_and_the_instance(tmp_path: Path) -> None:
    _modules, output = _loaded(tmp_path, "--help")
    for command in ("init", "serve", "partner", "partners", "clients", "policy", "audit"):
        assert f"  {command} " in output
    assert "Instance (administration commands act on it)" in output
    assert "KETENPOORT_DATABASE_URL" in output


def test_the_version_constant_is_the_installed_version() -> None:
    """`pyproject.toml` reads the version from `gateway.__version__` (dynamic)."""
    try:
        installed = importlib.metadata.version("ketenpoort")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a bare checkout
        pytest.skip("ketenpoort is not installed")
    assert gateway.__version__ == installed


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///var/ketenpoort.db",
        "sqlite:////tmp/k.db",
        "postgresql+psycopg://ops:s3cret@db.example/ketenpoort",
        "postgresql+psycopg://ops:s3cret@db.example:5433/ketenpoort?sslmode=require",
        "postgresql+psycopg://ops@db.example/ketenpoort",
        "postgresql+psycopg://ops:p%40ss:w0rd@db.example/ketenpoort",
        "postgresql+psycopg://:only-a-password@db.example/ketenpoort",
        "postgresql+psycopg://ops:s3cret@[::1]:5432/ketenpoort",
    ],
)
def test_shown_url_hides_the_password_as_sqlalchemy_does(url: str) -> None:
    expected = make_url(url).render_as_string(hide_password=True)
    assert shown_url(url) == expected
    assert "s3cret" not in shown_url(url)


def test_shown_url_of_an_unreadable_url() -> None:
    assert shown_url("not a url") == "(an unreadable KETENPOORT_DATABASE_URL)"
