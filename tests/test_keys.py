"""Key store: sealed at rest, 0600, atomic, never overwritten."""

from __future__ import annotations

import json
import secrets
import stat
import time
from pathlib import Path

import pytest

from gateway.bootstrap import initialise
from gateway.config import Settings
from gateway.keys import KeyPurpose, KeyStore, KeyStoreError, MasterKey, load_master_key


def store(tmp_path: Path, key: bytes | None = None) -> KeyStore:
    return KeyStore(tmp_path / "keys", MasterKey(key or secrets.token_bytes(32), False))


def test_creates_one_key_per_purpose_with_the_right_algorithm(tmp_path: Path) -> None:
    keys = store(tmp_path)
    created = keys.ensure_all()
    assert {r.purpose for r in created} == set(KeyPurpose)
    assert keys.active(KeyPurpose.TOKEN_SIGNING).public_jwk["crv"] == "P-256"  # type: ignore[index]
    assert keys.active(KeyPurpose.AUDIT_CHECKPOINT).public_jwk["crv"] == "Ed25519"  # type: ignore[index]
    enc = keys.active(KeyPurpose.MELDPUNT_ENCRYPTION)
    assert enc.public_jwk["use"] == "enc" and enc.algorithm == "ECDH-ES+A256KW"  # type: ignore[index]
    scalar = keys.secret_scalar(keys.active(KeyPurpose.PSEUDONYM).kid)
    assert len(scalar) == 32 and any(scalar)


def test_no_private_key_on_disk_in_clear(tmp_path: Path) -> None:
    keys = store(tmp_path)
    keys.ensure_all()
    for record in keys.records():
        raw = (tmp_path / "keys" / f"{record.purpose.value}-{record.kid}.json").read_text()
        material = keys.private_material(record.kid)
        secret = material["jwk"]["d"] if "jwk" in material else material["scalar"]
        assert secret not in raw
        assert '"d"' not in raw
        assert "sealed" in json.loads(raw)


def test_files_are_mode_0600(tmp_path: Path) -> None:
    keys = store(tmp_path)
    keys.ensure_all()
    for path in (tmp_path / "keys").glob("*.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_second_init_never_overwrites(settings: Settings) -> None:
    first = initialise(settings)
    before = {p.name: p.read_bytes() for p in settings.keys_dir.glob("*")}
    second = initialise(settings)
    after = {p.name: p.read_bytes() for p in settings.keys_dir.glob("*")}
    assert first["keysCreated"] and second["keysCreated"] == []
    assert before == after


def test_wrong_master_key_cannot_open(tmp_path: Path) -> None:
    keys = store(tmp_path)
    record = keys.create(KeyPurpose.TOKEN_SIGNING)
    other = store(tmp_path)
    with pytest.raises(Exception, match="cannot be opened"):
        other.private_jwk(record.kid)


def test_sealed_blob_cannot_be_moved_to_another_record(tmp_path: Path) -> None:
    keys = store(tmp_path, bytes(32))
    a = keys.create(KeyPurpose.TOKEN_SIGNING)
    b = keys.create(KeyPurpose.MELDPUNT_ENCRYPTION)
    path_a = tmp_path / "keys" / f"token-signing-{a.kid}.json"
    path_b = tmp_path / "keys" / f"meldpunt-encryption-{b.kid}.json"
    data_a, data_b = json.loads(path_a.read_text()), json.loads(path_b.read_text())
    data_a["sealed"] = data_b["sealed"]
    path_a.chmod(0o600)
    path_a.write_text(json.dumps(data_a))
    with pytest.raises(Exception, match="cannot be opened"):
        keys.private_jwk(a.kid)


def test_retire_keeps_the_key_but_not_active(tmp_path: Path) -> None:
    keys = store(tmp_path)
    old = keys.create(KeyPurpose.TOKEN_SIGNING)
    keys.retire(old.kid)
    with pytest.raises(KeyStoreError, match="no active token-signing key"):
        keys.active(KeyPurpose.TOKEN_SIGNING)
    assert keys.private_jwk(old.kid)["d"]
    new = keys.create(KeyPurpose.TOKEN_SIGNING)
    assert keys.active(KeyPurpose.TOKEN_SIGNING).kid == new.kid


def test_development_master_key_is_created_once_with_a_warning(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from gateway.logs import configure_logging

    configure_logging("INFO", "json")
    first = load_master_key(tmp_path, None, create=True)
    second = load_master_key(tmp_path, None, create=True)
    assert first.development and first.key == second.key
    assert stat.S_IMODE((tmp_path / ".dev-master-key").stat().st_mode) == 0o600
    assert "development master key in use" in capfd.readouterr().err


def test_missing_dev_master_key_without_create_is_clear(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="ketenpoort init"):
        load_master_key(tmp_path, None, create=False)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_another_processs_key_change_is_seen_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader trusts its records while the folder is unchanged; a new key or a
    retirement by another store (another process, the CLI) renames a file into the
    folder, and the reader's very next lookup sees it, however long it trusted them."""
    master = secrets.token_bytes(32)
    reader, writer = store(tmp_path, master), store(tmp_path, master)
    first = writer.create(KeyPurpose.TOKEN_SIGNING)
    clock = _Clock(time.time() + 60)  # the folder changed long ago
    monkeypatch.setattr("gateway.keys.store.time", clock)
    assert reader.active(KeyPurpose.TOKEN_SIGNING).kid == first.kid
    clock.now += 0.5  # now trusted without a stat of every file
    assert reader.active(KeyPurpose.TOKEN_SIGNING).kid == first.kid
    second = writer.create(KeyPurpose.TOKEN_SIGNING)
    assert reader.active(KeyPurpose.TOKEN_SIGNING).kid == second.kid
    writer.retire(second.kid)
    assert reader.active(KeyPurpose.TOKEN_SIGNING).kid == first.kid
    assert [r.kid for r in reader.records(KeyPurpose.TOKEN_SIGNING)] == [first.kid, second.kid]


def test_a_key_file_edited_in_place_is_seen_within_the_rescan_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.keys.store import RESCAN_SECONDS

    keys = store(tmp_path)
    record = keys.create(KeyPurpose.TOKEN_SIGNING)
    clock = _Clock(time.time() + 60)
    monkeypatch.setattr("gateway.keys.store.time", clock)
    assert keys.active(KeyPurpose.TOKEN_SIGNING).kid == record.kid
    path = tmp_path / "keys" / f"{record.purpose.value}-{record.kid}.json"
    data = json.loads(path.read_text())
    data["status"] = "retired"
    with path.open("r+") as handle:  # in place: the folder does not change
        handle.write(json.dumps(data, indent=2))
        handle.truncate()
    clock.now += RESCAN_SECONDS + 0.1
    with pytest.raises(KeyStoreError, match="no active token-signing key"):
        keys.active(KeyPurpose.TOKEN_SIGNING)


def test_a_thread_sorting_an_older_reading_never_caches_it_for_the_newer_one(
    tmp_path: Path,
) -> None:
    """Thread A reads the records, thread B sees a new key and its sorted list; then A
    files the list it sorted from its older reading. The newer reading must still win:
    a retired key served from a cache would pseudonymise or sign under it until the
    next key change (found in review, replayed here step by step)."""
    master = secrets.token_bytes(32)
    keys, writer = store(tmp_path, master), store(tmp_path, master)
    first = writer.create(KeyPurpose.PSEUDONYM)
    older = keys._current()  # thread A's reading, before the new key
    second = writer.create(KeyPurpose.PSEUDONYM)
    assert keys.active(KeyPurpose.PSEUDONYM).kid == second.kid  # thread B
    # thread A, late, fills the list it sorted from its own (older) reading
    older.by_purpose[KeyPurpose.PSEUDONYM] = [r for r in older.records]
    assert keys.active(KeyPurpose.PSEUDONYM).kid == second.kid
    assert [r.kid for r in keys.records(KeyPurpose.PSEUDONYM)] == [first.kid, second.kid]
