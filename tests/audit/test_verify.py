"""The verifier finds every kind of tampering and names the first bad index; the CLI exits 1."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from gateway import crypto
from gateway.audit.sequencer import CheckpointSigner
from gateway.audit.verify import Report, verify_log
from gateway.audit.verify_rows import database_source
from gateway.cli import main
from gateway.config import Settings
from gateway.db import Database
from tests.audit.conftest import CARE, write_events


def cli_env(settings: Settings) -> dict[str, str]:
    assert settings.master_key is not None
    return {
        "KETENPOORT_DATABASE_URL": settings.database_url,
        "KETENPOORT_KEYS_DIR": str(settings.keys_dir),
        "KETENPOORT_MASTER_KEY": crypto.b64url(settings.master_key),
        "KETENPOORT_ISSUER": settings.issuer,
        "KETENPOORT_LOG_FORMAT": "json",
    }


def run_verify(settings: Settings, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["audit", "verify", "--no-progress", *args], env=cli_env(settings)
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def log10(database: Database, sequence: Callable[..., int]) -> Database:
    """Ten sequenced entries with checkpoints at sizes 6 and 10."""
    write_events(database, 6)
    sequence()
    write_events(database, 4, CARE)
    sequence()
    return database


def verify_db(
    settings: Settings, signer: CheckpointSigner, witnessed: tuple[str, ...] = ()
) -> Report:
    entries, notes, close = database_source(settings.database_url)
    try:
        return verify_log(entries, notes, [signer.verifier_key], witnessed=witnessed)
    finally:
        close()


def sql(db: Database, statement: str, **params: object) -> None:
    with db.transaction() as session:
        session.execute(text(statement), params)


def first_bad(report: Report) -> int:
    assert not report.ok
    first = report.first_bad
    assert first is not None
    return first.index


def test_an_intact_log_verifies(
    settings: Settings, signer: CheckpointSigner, log10: Database
) -> None:
    report = verify_db(settings, signer)
    assert report.ok and report.entries == 10 and report.checkpoints == 2
    code, out, err = run_verify(settings, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] is True and data["entries"] == 10 and data["firstBadIndex"] is None
    code, out, _ = run_verify(settings)
    assert code == 0 and out.startswith("ok: 10 entries")


def _flip_byte(db: Database, seq: int) -> bytes:
    with db.session() as session:
        data = bytes(
            session.execute(
                text("SELECT data FROM audit_entries WHERE seq = :s"), {"s": seq}
            ).scalar_one()
        )
    changed = data.replace(b"signal.create", b"signal.cr3ate").replace(b'"care"', b'"kare"')
    assert changed != data and len(changed) == len(data)
    sql(db, "UPDATE audit_entries SET data = :d WHERE seq = :s", d=changed, s=seq)
    return changed


def test_one_changed_byte_is_found(
    settings: Settings, signer: CheckpointSigner, log10: Database
) -> None:
    _flip_byte(log10, 7)
    assert first_bad(verify_db(settings, signer)) == 7
    code, _, err = run_verify(settings)
    assert code == 1 and "first bad index 7" in err


def test_changed_bytes_with_a_matching_leaf_hash_are_found(
    settings: Settings, signer: CheckpointSigner, log10: Database
) -> None:
    from gateway.audit.rfc9162 import leaf_hash

    changed = _flip_byte(log10, 7)
    sql(log10, "UPDATE audit_entries SET leaf_hash = :h WHERE seq = 7", h=leaf_hash(changed))
    report = verify_db(settings, signer)
    assert first_bad(report) == 7 and "Merkle tree" in report.first_bad.problem  # type: ignore[union-attr]
    # ... and with the stored tree leaf rewritten too, the signed checkpoint still catches it:
    sql(
        log10,
        "UPDATE audit_tree_nodes SET hash = :h WHERE level = 0 AND idx = 7",
        h=leaf_hash(changed),
    )
    report = verify_db(settings, signer)
    assert first_bad(report) == 6  # the last verified checkpoint: indices 6..9 are suspect
    assert "checkpoint #2" in report.first_bad.problem  # type: ignore[union-attr]


def test_a_deleted_row_is_found(
    settings: Settings, signer: CheckpointSigner, log10: Database
) -> None:
    sql(log10, "DELETE FROM audit_entries WHERE seq = 3")
    report = verify_db(settings, signer)
    assert first_bad(report) == 3 and "missing" in report.first_bad.problem  # type: ignore[union-attr]
    code, _, err = run_verify(settings)
    assert code == 1 and "first bad index 3" in err


def test_a_deleted_and_renumbered_row_is_found(
    settings: Settings, signer: CheckpointSigner, log10: Database
) -> None:
    sql(log10, "DELETE FROM audit_entries WHERE seq = 3")
    for seq in range(4, 10):
        sql(log10, "UPDATE audit_entries SET seq = :new WHERE seq = :old", new=seq - 1, old=seq)
    assert first_bad(verify_db(settings, signer)) == 3


def test_swapped_rows_are_found(
    settings: Settings, signer: CheckpointSigner, log10: Database
) -> None:
    sql(log10, "UPDATE audit_entries SET seq = -1 WHERE seq = 2")
    sql(log10, "UPDATE audit_entries SET seq = 2 WHERE seq = 5")
    sql(log10, "UPDATE audit_entries SET seq = 5 WHERE seq = -1")
    assert first_bad(verify_db(settings, signer)) == 2
    code, _, err = run_verify(settings)
    assert code == 1 and "first bad index 2" in err


def test_a_truncated_log_is_found(
    settings: Settings, signer: CheckpointSigner, log10: Database
) -> None:
    sql(log10, "DELETE FROM audit_entries WHERE seq >= 8")
    report = verify_db(settings, signer)
    assert first_bad(report) == 8 and "removed" in report.first_bad.problem  # type: ignore[union-attr]


def test_truncate_and_regrow_a_fork_is_found(
    settings: Settings,
    signer: CheckpointSigner,
    log10: Database,
    sequence: Callable[..., int],
    tmp_path: Path,
) -> None:
    with log10.session() as session:
        witnessed = (
            session.execute(text("SELECT note FROM audit_checkpoints ORDER BY id DESC"))
            .scalars()
            .first()
        )
    assert witnessed is not None
    # A careful attacker: removes entries 6.., the nodes over them and later checkpoints,
    # then lets the sequencer grow a different log of the same size.
    sql(log10, "DELETE FROM audit_entries WHERE seq >= 6")
    with log10.session() as session:
        nodes = session.execute(text("SELECT level, idx FROM audit_tree_nodes")).all()
    for level, idx in nodes:
        if (idx + 1) * (1 << level) > 6:
            sql(log10, "DELETE FROM audit_tree_nodes WHERE level = :l AND idx = :i", l=level, i=idx)
    sql(log10, "DELETE FROM audit_checkpoints WHERE size > 6")
    write_events(log10, 4, action="signal.withdraw")
    assert sequence() == 4
    # The database alone is self-consistent again; the checkpoint a witness kept is not.
    assert verify_db(settings, signer).ok
    report = verify_db(settings, signer, witnessed=(witnessed,))
    assert first_bad(report) == 6 and "witnessed" in report.first_bad.problem  # type: ignore[union-attr]
    kept = tmp_path / "checkpoint.txt"
    kept.write_text(witnessed)
    code, _, err = run_verify(settings, "--checkpoint", str(kept))
    assert code == 1 and "first bad index 6" in err


def test_a_shrinking_or_forged_checkpoint_is_found(
    settings: Settings, signer: CheckpointSigner, log10: Database
) -> None:
    with log10.session() as session:
        note = session.execute(
            text("SELECT note FROM audit_checkpoints WHERE size = 10")
        ).scalar_one()
    forged = note.replace("\n10\n", "\n9\n")
    sql(log10, "UPDATE audit_checkpoints SET note = :n WHERE size = 10", n=forged)
    report = verify_db(settings, signer)
    assert first_bad(report) == 6 and "signature" in report.first_bad.problem  # type: ignore[union-attr]


def test_entries_beyond_every_checkpoint_are_found(
    settings: Settings, signer: CheckpointSigner, log10: Database
) -> None:
    write_events(log10, 1)
    sql(log10, "UPDATE audit_entries SET seq = 10 WHERE seq IS NULL")
    assert first_bad(verify_db(settings, signer)) == 10


def test_another_key_does_not_verify(
    settings: Settings, signer: CheckpointSigner, log10: Database, tmp_path: Path
) -> None:
    from gateway.audit.note import VerifierKey

    other = VerifierKey(signer.origin, bytes(range(32))).text()
    code, _, err = run_verify(settings, "--key", other)
    assert code == 1 and "first bad index 0" in err and "signature" in err
    code, _, err = run_verify(settings, "--key", "not-a-key")
    assert code == 1 and "--key" in err


def test_verifier_does_not_load_the_writer() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, gateway.audit.verify, gateway.audit.cli;"
        "bad = [m for m in ('gateway.audit.models', 'gateway.audit.service', "
        "'gateway.audit.sequencer', 'gateway.audit.tree', 'gateway.audit.views', 'flask') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
