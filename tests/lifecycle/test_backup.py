"""Backup and restore: a restored instance verifies its log and matches as before; a
backup whose log does not verify is refused; an erased payload does not come back."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import make_url

from gateway.actors import cli_actor
from gateway.app import create_app
from gateway.audit.models import AuditEntryRow
from gateway.cases.approvals import meldpunt_plaintext
from gateway.cli import main
from gateway.config import Settings
from gateway.errors import InternalError
from gateway.lifecycle.backup import restore_backup
from gateway.lifecycle.retention import RetentionService
from gateway.matching.processor import process_outbox
from gateway.services import close_app
from gateway.signals.models import SignalRow
from tests.audit.test_verify import cli_env
from tests.cases.conftest import World
from tests.conftest import POSTGRES_URL
from tests.lifecycle.support import store_signal
from tests.oauth.support import TokenHeaders, register_partner
from tests.signals.test_api import body


def _cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=cli_env(settings))


def _ok(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


@contextlib.contextmanager
def other_instance(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Empty settings for a second instance on the same backend (same master key, issuer)."""
    if settings.database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'restored' / 'ketenpoort.db'}"
        yield dataclasses.replace(settings, database_url=url, keys_dir=tmp_path / "keys2")
        return
    # Another database on the same server, the same schema name (a fresh server, say).
    name = f"restore_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(settings.database_url).set(database=name)
        yield dataclasses.replace(
            settings,
            database_url=url.render_as_string(hide_password=False),
            keys_dir=tmp_path / "keys2",
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _token(app: Flask, partner: Any, scopes: str) -> TokenHeaders:
    response = partner.request_token(app.test_client(), scope=scopes)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    return TokenHeaders(partner, data["access_token"], data["token_type"])


SCOPES = "signals:write signals:read notifications:read directory:read"


def test_backup_restore_verify_and_match_as_before(app: Flask, tmp_path: Path) -> None:
    settings: Settings = app.extensions["ketenpoort"].settings
    police = register_partner(app, "police", SCOPES)
    care = register_partner(app, "care", SCOPES)
    client = app.test_client()
    headers = _token(app, police, SCOPES)
    first = client.post("/v1/signals", json=body(client, headers), headers=headers)
    assert first.status_code == 201, first.get_json()
    process_outbox(app.extensions["ketenpoort"].db)
    _ok(_cli(settings, "audit", "sequence", "--json"))

    made = _ok(_cli(settings, "backup", str(tmp_path / "backup"), "--json"))
    assert Path(made["keys"]).is_dir() and Path(made["database"]).is_file()
    assert json.loads((tmp_path / "backup" / "manifest.json").read_text())["migration"]
    refused = _cli(settings, "backup", str(tmp_path / "backup"))
    assert refused.exit_code == 1 and refused.stderr.startswith("error: ")

    with other_instance(settings, tmp_path) as restored:
        done = _ok(_cli(restored, "restore", str(tmp_path / "backup"), "--json"))
        assert done["keysRestored"] is True and done["auditEntries"] > 0
        assert _cli(restored, "audit", "verify", "--no-progress").exit_code == 0
        again = create_app(settings=restored)
        try:
            client2 = again.test_client()
            headers2 = _token(again, care, SCOPES)
            second = client2.post(
                "/v1/signals", json=body(client2, headers2, "JH-1"), headers=headers2
            )
            assert second.status_code == 201, second.get_json()
            done_matching = process_outbox(again.extensions["ketenpoort"].db)
            assert any(p.changes for p in done_matching)  # it met the signal from before
            with again.extensions["ketenpoort"].db.session() as session:
                actions = set(session.execute(select(AuditEntryRow.action)).scalars())
            assert {"backup.create", "backup.restore"} <= actions
        finally:
            close_app(again)


def test_restore_tells_how_far_the_verification_got(app: Flask, tmp_path: Path) -> None:
    """What the CLI's progress bar shows: entries of the backup's log verified so far."""
    settings: Settings = app.extensions["ketenpoort"].settings
    register_partner(app, "police", SCOPES)
    _ok(_cli(settings, "audit", "sequence", "--json"))
    _ok(_cli(settings, "backup", str(tmp_path / "backup"), "--json"))
    heard: list[tuple[int, int]] = []
    with other_instance(settings, tmp_path) as restored:
        done = restore_backup(
            restored,
            tmp_path / "backup",
            actor=cli_actor(),
            progress=lambda index, total: heard.append((index, total)),
        )
    assert heard and heard[-1] == (done["auditEntries"], 0)


def test_a_backup_whose_log_does_not_verify_is_refused(app: Flask, tmp_path: Path) -> None:
    settings: Settings = app.extensions["ketenpoort"].settings
    register_partner(app, "police", SCOPES)
    _ok(_cli(settings, "audit", "sequence", "--json"))
    db = app.extensions["ketenpoort"].db
    with db.transaction() as session:
        session.execute(
            update(AuditEntryRow).where(AuditEntryRow.seq == 0).values(data=b'{"forged":1}')
        )
    _ok(_cli(settings, "backup", str(tmp_path / "backup"), "--json"))
    with db.transaction() as session:
        before = session.execute(text("SELECT count(*) FROM audit_entries")).scalar_one()

    # Onto another instance: nothing is created.
    with other_instance(settings, tmp_path) as other:
        refused = _cli(other, "restore", str(tmp_path / "backup"))
        assert refused.exit_code == 1
        assert "does not verify" in refused.stderr and "first bad index 0" in refused.stderr
        assert not other.keys_dir.exists()
    # Onto the instance itself: it keeps what it had.
    db.dispose()
    refused = _cli(settings, "restore", str(tmp_path / "backup"))
    assert refused.exit_code == 1 and "does not verify" in refused.stderr
    with db.transaction() as session:
        assert session.execute(text("SELECT count(*) FROM audit_entries")).scalar_one() == before


def test_a_backup_with_a_changed_database_file_is_refused(app: Flask, tmp_path: Path) -> None:
    settings: Settings = app.extensions["ketenpoort"].settings
    made = _ok(_cli(settings, "backup", str(tmp_path / "backup"), "--json"))
    with Path(made["database"]).open("ab") as handle:
        handle.write(b"x")
    refused = _cli(settings, "restore", str(tmp_path / "backup"))
    assert refused.exit_code == 1 and "digest" in refused.stderr


def test_an_erased_payload_does_not_come_back_from_a_restored_backup(
    world: World, tmp_path: Path
) -> None:
    """Back up, erase, restore the old database with the current key store: the erased
    signal's payload does not decrypt, the other's does."""
    app = world.app
    svc = app.extensions["ketenpoort"]
    settings: Settings = svc.settings
    now = datetime.now(UTC)
    short = store_signal(app, "kort bewaard", days=1, now=now)
    long = store_signal(app, "lang bewaard", days=400, now=now)
    _ok(_cli(settings, "backup", str(tmp_path / "backup"), "--json"))

    end = datetime(now.year + (now.month + 1) // 12, (now.month + 1) % 12 + 1, 1, tzinfo=UTC)
    report = RetentionService(svc.db, svc.policy.engine, svc.keys).run(now=end)
    assert report.erased == 1 and len(report.epoch_keys) == 1

    svc.db.dispose()
    done = _ok(_cli(settings, "restore", str(tmp_path / "backup"), "--keep-keys", "--json"))
    assert done["keysRestored"] is False
    with svc.db.session() as session:
        payloads = dict(session.execute(select(SignalRow.id, SignalRow.payload)).all())
    assert set(payloads) == {short, long}  # the old database is back, erased signal and all
    with pytest.raises(InternalError):
        meldpunt_plaintext(svc.keys, str(payloads[short]))
    assert meldpunt_plaintext(svc.keys, str(payloads[long])) == b"lang bewaard"
    assert _cli(settings, "audit", "verify", "--no-progress").exit_code == 0


def test_a_backup_tells_its_progress_up_to_the_end(app: Flask, tmp_path: Path) -> None:
    """What `ketenpoort backup` shows as a rich progress bar on a terminal."""
    from gateway.actors import cli_actor
    from gateway.lifecycle.backup import create_backup

    settings: Settings = app.extensions["ketenpoort"].settings
    told: list[tuple[int, int]] = []
    create_backup(
        settings,
        tmp_path / "backup",
        actor=cli_actor(),
        progress=lambda done, total: told.append((done, total)),
    )
    assert told and told[-1][0] == told[-1][1] > 0
    assert all(done <= total for done, total in told)
