"""The `ketenpoort` command line: init is idempotent, errors are one line on stderr."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
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


def test_admin_commands_on_an_uninitialised_database_say_init_and_create_nothing(
    tmp_path: Path,
) -> None:
    """One line, exit 3, and no database file (nor its folder) left behind."""
    env = env_for(tmp_path)
    env["KETENPOORT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'later' / 'k.db'}"
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    for args in (
        ["partners", "list"],
        ["partners", "add", "police-1", "--name", "P", "--kind", "police", "--jwks", str(jwks)],
        ["partners", "disable", "police-1"],
        ["clients", "add", "police-1", "--jwks", str(jwks), "--scope", "signals:read"],
        ["audit", "export"],
        ["audit", "verify"],
        ["signals", "expire"],
        ["policy", "versions"],
        ["users", "add", "anna", "--role", "coordinator"],
    ):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 3, (args, result.output)
        assert result.stderr.strip().splitlines() == [
            "error: the database is not initialised; run `ketenpoort init`"
        ], args
        assert not (tmp_path / "later").exists(), args


def test_an_unreachable_database_is_one_line_with_the_cause_and_no_password(
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path)
    env["KETENPOORT_DATABASE_URL"] = (
        f"postgresql+psycopg://someone:s3cret-pw@127.0.0.1:{free_port()}/nowhere"
    )
    result = CliRunner().invoke(main, ["partners", "list"], env=env)
    assert result.exit_code == 1, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: the database cannot be reached: ") and "refused" in line
    assert "s3cret-pw" not in line


def test_operator_errors_are_one_line_with_exit_1(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    result = CliRunner().invoke(
        main,
        ["partners", "add", "police-1", "--name", "P", "--kind", "bank", "--jwks", str(jwks)],
        env=env,
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown kind 'bank'")
    assert len(result.stderr.strip().splitlines()) == 1
    bad = CliRunner().invoke(main, ["policy", "show", "--digest", "00"], env=env)
    assert (bad.exit_code, bad.stderr) == (
        1,
        "error: no policy version with digest 00 in this database\n",
    )
    usage = CliRunner().invoke(main, ["partners", "add"], env=env, prog_name="ketenpoort")
    assert (usage.exit_code, usage.stderr) == (
        2,
        "error: missing argument 'ORG' (see `ketenpoort partners add --help`)\n",
    )
    # click's own usage errors take the same one-line form, in partner commands too
    for args in (["bogus"], ["--bogus"], ["partner", "submit", "missing.json"]):
        wrong = CliRunner().invoke(main, args, env=env)
        assert wrong.exit_code == 2, args
        [line] = wrong.stderr.splitlines()
        assert line.startswith("error: ") and "--help`)" in line, args


def test_audit_verify_reads_public_keys_without_the_master_key(tmp_path: Path) -> None:
    """The verifier needs only the public checkpoint key: no master key is loaded."""
    env = env_for(tmp_path)
    assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
    assert CliRunner().invoke(main, ["audit", "sequence"], env=env).exit_code == 0
    without_master = {k: v for k, v in env.items() if k != "KETENPOORT_MASTER_KEY"}
    result = CliRunner().invoke(
        main, ["audit", "verify", "--json", "--no-progress"], env=without_master
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    from gateway.keys import KeyPurpose, KeyStore, KeyStoreError

    public = KeyStore.public_only(tmp_path / "keys")
    record = public.active(KeyPurpose.AUDIT_CHECKPOINT)
    assert record.public_jwk is not None
    try:
        public.private_jwk(record.kid)
    except KeyStoreError as exc:
        assert "public keys only" in str(exc)
    else:  # pragma: no cover - a regression
        raise AssertionError("a public-only key store must not unseal")


def test_help_and_verbose_name_the_instance_without_secrets(tmp_path: Path) -> None:
    env = {
        "KETENPOORT_DATABASE_URL": "postgresql+psycopg://ops:s3cret@db.example/ketenpoort",
        "KETENPOORT_KEYS_DIR": "/srv/ketenpoort-keys",
    }
    helped = CliRunner().invoke(main, ["--help"], env=env)
    text = " ".join(helped.output.split())  # as wrapped for the terminal
    assert "postgresql+psycopg://ops:***@db.example/ketenpoort" in text
    assert "key store /srv/ketenpoort-keys" in text and "s3cret" not in helped.output
    for variable in ("KETENPOORT_DATABASE_URL", "KETENPOORT_KEYS_DIR", "KETENPOORT_MASTER_KEY"):
        assert variable in helped.output
    verbose = CliRunner().invoke(main, ["-v", "version"], env=env)
    assert "instance: database postgresql+psycopg://ops:***@db.example" in verbose.stderr
    # every administration command's own --help names it too; a partner's does not
    for args in (["partners", "list"], ["audit", "verify"], ["retention", "run"], ["init"]):
        sub = CliRunner().invoke(main, [*args, "--help"], env=env)
        assert "postgresql+psycopg://ops:***@db.example/ketenpoort" in sub.output, args
        assert "s3cret" not in sub.output, args
    partner = CliRunner().invoke(main, ["partner", "check", "--help"], env=env)
    assert "db.example" not in partner.output


def test_every_option_says_what_it_does_and_partner_help_names_its_variables() -> None:
    ctx = click.Context(main)

    def undocumented(command: click.Command, path: str) -> Iterator[str]:
        for param in command.params:
            if isinstance(param, click.Option) and not param.help:
                yield f"{path} {param.opts[0]}"
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                found = command.get_command(ctx, name)
                assert found is not None
                yield from undocumented(found, f"{path} {name}")

    assert list(undocumented(main, "ketenpoort")) == []
    helped = CliRunner().invoke(main, ["partner", "--help"]).output
    for key in ("ISSUER", "CLIENT_ID", "SIGNING_KEY", "ENCRYPTION_KEY", "STATE", "DPOP"):
        assert f"KETENPOORT_PARTNER_{key}" in helped


def _ketenpoort(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """One command in a fresh interpreter, as an operator runs it: nothing imported
    before it (an in-process runner inherits every model the other tests loaded)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_admin_commands_in_a_fresh_process_print_json_on_stdout_alone(tmp_path: Path) -> None:
    """`users add` for every role works on its own (it once failed on the foreign key
    to organisations, whose model it never loaded), and commands that log while they
    work keep stdout for their result: `--json` output parses as it is."""
    env = {**env_for(tmp_path), "KETENPOORT_LOG_FORMAT": "console"}
    assert _ketenpoort(env, "init").returncode == 0
    keys = tmp_path / "partner"
    assert _ketenpoort(env, "partner", "keys", "init", "--dir", str(keys), "--json").returncode == 0
    jwks = str(keys / "public.jwks.json")
    added = _ketenpoort(
        env, "partners", "add", "roc", "--name", "ROC", "--kind", "education", "--jwks", jwks
    )
    assert added.returncode == 0, added.stderr
    for args in (
        ("users", "add", "c.one", "--role", "coordinator"),
        ("users", "add", "p.one", "--role", "privacy-officer", "--json"),
        ("users", "add", "a.one", "--role", "admin"),
        ("users", "add", "m.one", "--role", "professional", "--organisation", "roc"),
    ):
        done = _ketenpoort(env, *args)
        assert done.returncode == 0, done.stderr
        assert set(json.loads(done.stdout)) >= {"oneTimePassword", "totpSecret", "totpUri"}
    for args in (
        ("keys", "rotate", "checkpoint", "--json"),
        ("backup", str(tmp_path / "backup"), "--json"),
    ):
        done = _ketenpoort(env, *args)
        assert done.returncode == 0, done.stderr
        json.loads(done.stdout)  # nothing but the result
        assert "[info" not in done.stdout


def test_every_command_that_prints_a_result_takes_json() -> None:
    from gateway.client.cli import partner

    always = {
        ("users", "add"): main,
        ("keys", "init"): partner,
        ("submit",): partner,
        ("notifications",): partner,
        ("withdraw",): partner,
        ("matches",): partner,
        ("verify",): partner,
    }
    for path, group in always.items():
        command: click.Command = group
        for name in path:
            assert isinstance(command, click.Group)
            found = command.get_command(click.Context(command), name)
            assert found is not None
            command = found
        assert any("--json" in p.opts for p in command.params), path
