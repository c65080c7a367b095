"""`ketenpoort policy check|test|show|versions`, and `serve` refusing a broken policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.policy.loader import load_policy
from tests.integration.live import free_port
from tests.policy.conftest import TWENTE
from tests.test_cli import env_for


def broken(tmp_path: Path, policy_text: str) -> tuple[Path, int]:
    path = tmp_path / "broken.yaml"
    text = policy_text.replace("retention_days: 365", "retention_days: 3650")
    path.write_text(text, encoding="utf-8")
    return path, text.splitlines().index("    retention_days: 3650") + 1


def test_check_valid() -> None:
    result = CliRunner().invoke(main, ["policy", "check", str(TWENTE)])
    assert result.exit_code == 0
    assert "valid" in result.stdout and load_policy(TWENTE).digest in result.stdout


def test_check_defaults_to_the_configured_policy() -> None:
    result = CliRunner().invoke(
        main, ["policy", "check", "--json"], env={"KETENPOORT_POLICY": str(TWENTE)}
    )
    data = json.loads(result.stdout)
    assert data["valid"] is True and data["digest"] == load_policy(TWENTE).digest
    assert data["tests"] >= 20


def test_check_broken_names_file_line_field(tmp_path: Path, policy_text: str) -> None:
    path, line = broken(tmp_path, policy_text)
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"error: {path}, line {line}: field categories.concern.retention_days: "
    )
    as_json = CliRunner().invoke(main, ["policy", "check", "--json", str(path)])
    assert as_json.exit_code == 1
    [problem] = json.loads(as_json.stdout)["problems"]
    assert problem["line"] == line and problem["field"] == "categories.concern.retention_days"


def test_policy_test_reports_like_a_test_runner(tmp_path: Path, policy_text: str) -> None:
    result = CliRunner().invoke(main, ["policy", "test", str(TWENTE)])
    assert result.exit_code == 0, result.output
    assert "PASS  Politie meldt een mogelijk slachtoffer" in result.stdout
    assert result.stdout.rstrip().endswith("passed, 0 failed")

    path = tmp_path / "wrong.yaml"
    path.write_text(
        policy_text.replace(
            'expect: {effect: deny, rule: "deny:not-a-submitter"}',
            "expect: {effect: allow, rule: partner-submits-signal}",
        )
    )
    failing = CliRunner().invoke(main, ["policy", "test", "--json", str(path)])
    assert failing.exit_code == 1
    data = json.loads(failing.stdout)
    assert data["failed"] == 1
    [bad] = [r for r in data["results"] if not r["passed"]]
    assert bad["decision"]["rule"] == "deny:not-a-submitter"


def test_show_renders_markdown_with_dutch_headings() -> None:
    result = CliRunner().invoke(main, ["policy", "show", str(TWENTE)])
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("# Privacyprotocol")
    for heading in (
        "## Verwerkingsverantwoordelijke",
        "## Categorieën van signalen",
        "### possible-perpetrator",
        "## Wie hoort van een treffer",
        "## Rollen en functiescheiding",
        "## Doelbinding",
        "## Toegestane handelingen",
        "## Vier-ogenprincipe",
    ):
        assert heading in text
    assert "**Bewaartermijn:** 730 dagen" in text
    assert "| `education` | nee | nee |" in text


def test_versions_and_show_by_digest(tmp_path: Path) -> None:
    env = {**env_for(tmp_path), "KETENPOORT_POLICY": str(TWENTE)}
    runner = CliRunner()
    assert runner.invoke(main, ["init"], env=env).exit_code == 0
    from gateway.app import create_app
    from gateway.config import load_settings
    from gateway.services import close_app

    close_app(create_app(settings=load_settings(env)))  # activates the policy
    digest = load_policy(TWENTE).digest
    versions = json.loads(runner.invoke(main, ["policy", "versions", "--json"], env=env).stdout)
    assert [v["digest"] for v in versions["versions"]] == [digest]
    shown = runner.invoke(main, ["policy", "show", "--digest", digest, "--json"], env=env)
    assert json.loads(shown.stdout)["digest"] == digest
    missing = runner.invoke(main, ["policy", "show", "--digest", "0" * 64], env=env)
    assert missing.exit_code == 1 and "no policy version" in missing.stderr


def test_schema_command_prints_the_json_schema() -> None:
    result = CliRunner().invoke(main, ["policy", "schema"])
    assert json.loads(result.stdout)["title"] == "Ketenpoort policy"


def test_serve_with_a_broken_policy_prints_one_line_and_exits(
    tmp_path: Path, policy_text: str
) -> None:
    path, line = broken(tmp_path, policy_text)
    env = {**os.environ, **env_for(tmp_path), "KETENPOORT_POLICY": str(path)}
    init = subprocess.run(
        [sys.executable, "-m", "gateway", "init"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    errors = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert errors == [
        f"error: invalid policy {path}, line {line}: field categories.concern.retention_days: "
        "Input should be less than or equal to 730"
    ]
