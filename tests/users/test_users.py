"""`ketenpoort users add`: one-time password and TOTP secret shown once, never stored in clear."""

from __future__ import annotations

import json

import pyotp
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.cli import main
from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyStore, load_master_key
from gateway.users.models import UserRow
from gateway.users.service import totp_secret_of
from tests.audit.test_verify import cli_env


def add(settings: Settings, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["users", "add", *args], env=cli_env(settings))
    return result.exit_code, result.stdout, result.stderr


def test_add_prints_the_one_time_password_and_totp_secret(
    settings: Settings, initialised: object
) -> None:
    code, out, _ = add(settings, "f.de.vries", "--role", "coordinator")
    assert code == 0, out
    created = json.loads(out)
    assert created["name"] == "f.de.vries" and created["role"] == "coordinator"
    assert created["totpUri"].startswith("otpauth://totp/")
    database = Database(settings.database_url)
    with database.transaction(write=False) as session:
        row = session.execute(select(UserRow)).scalar_one()
        entry = session.execute(
            select(AuditEntryRow.data).where(AuditEntryRow.action == "user.register")
        ).scalar_one()
    database.dispose()
    assert json.loads(entry)["resource"] == {"type": "user", "id": created["id"]}
    assert created["oneTimePassword"].encode() not in entry
    assert created["totpSecret"].encode() not in entry
    assert PasswordHasher().verify(row.password_hash, created["oneTimePassword"])
    assert created["oneTimePassword"] not in row.password_hash
    assert created["totpSecret"] not in row.totp_secret_sealed
    keys = KeyStore(
        settings.keys_dir, load_master_key(settings.keys_dir, settings.master_key, create=False)
    )
    secret = totp_secret_of(keys, row)
    assert secret == created["totpSecret"]
    totp = pyotp.TOTP(secret)
    assert totp.verify(totp.now())


def test_refusals_are_one_line_errors(settings: Settings, initialised: object) -> None:
    assert add(settings, "a.jansen", "--role", "admin")[0] == 0
    code, _, err = add(settings, "a.jansen", "--role", "coordinator")
    assert code == 1 and err.strip() == "error: a user named 'a.jansen' exists"
    code, _, err = add(settings, "b.bakker", "--role", "superuser")
    assert code == 1 and "unknown role 'superuser'" in err
    code, _, err = add(settings, "Not A Name", "--role", "admin")
    assert code == 1 and "user name" in err
