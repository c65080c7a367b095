"""File-backed key store.

One JSON file per key: the public record in clear, the private material sealed with
AES-256-GCM under the master key, the record's identity bound in as associated data
(so a sealed blob cannot be moved to another record). Files are created atomically with
mode 0600, and never overwritten: a key once written only changes status.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from gateway import crypto
from gateway.errors import OperatorError
from gateway.logs import get_logger
from gateway.private_files import make_private_dir

log = get_logger(__name__)

DEV_MASTER_KEY_FILE = ".dev-master-key"
#: A key change shows at once when it renames a file into the folder (every change the
#: gateway makes); a file edited in place shows within this many seconds.
RESCAN_SECONDS = 2.0


class KeyStoreError(OperatorError):
    """The key store is missing a key, or a file in it is unreadable."""


class KeyPurpose(StrEnum):
    TOKEN_SIGNING = "token-signing"  # noqa: S105 - a purpose name, not a secret
    AUDIT_CHECKPOINT = "audit-checkpoint"
    PSEUDONYM = "pseudonym"
    MELDPUNT_ENCRYPTION = "meldpunt-encryption"


ALGORITHMS: dict[KeyPurpose, str] = {
    KeyPurpose.TOKEN_SIGNING: "ES256",
    KeyPurpose.AUDIT_CHECKPOINT: "Ed25519",
    KeyPurpose.PSEUDONYM: "ristretto255",
    KeyPurpose.MELDPUNT_ENCRYPTION: "ECDH-ES+A256KW",
}


@dataclass(frozen=True)
class MasterKey:
    key: bytes = field(repr=False)
    development: bool


@dataclass(frozen=True)
class KeyRecord:
    kid: str
    purpose: KeyPurpose
    algorithm: str
    created: datetime
    status: str  # "active" | "retired"
    public_jwk: dict[str, Any] | None = None

    def aad(self) -> bytes:
        return f"ketenpoort-key:{self.kid}:{self.purpose.value}:{self.algorithm}".encode()

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "purpose": self.purpose.value,
            "algorithm": self.algorithm,
            "created": self.created.isoformat(),
            "status": self.status,
            "publicJwk": self.public_jwk,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        return cls(
            kid=data["kid"],
            purpose=KeyPurpose(data["purpose"]),
            algorithm=data["algorithm"],
            created=datetime.fromisoformat(data["created"]),
            status=data["status"],
            public_jwk=data.get("publicJwk"),
        )


def load_master_key(keys_dir: Path, configured: bytes | None, *, create: bool) -> MasterKey:
    """The configured master key, or a development key kept beside the keys (warned)."""
    if configured is not None:
        return MasterKey(configured, development=False)
    path = keys_dir / DEV_MASTER_KEY_FILE
    if not path.exists():
        if not create:
            raise KeyStoreError(
                "KETENPOORT_MASTER_KEY is not set and no development master key exists; "
                "run `ketenpoort init`"
            )
        make_private_dir(keys_dir, narrow_existing=True)
        _write_new_file(path, crypto.b64url(crypto.random_master_key()).encode())
    log.warning(
        "development master key in use",
        detail="KETENPOORT_MASTER_KEY is not set: private keys are sealed under "
        f"{path}, which lies beside them. Never run production this way.",
    )
    try:
        key = crypto.b64url_decode(path.read_text().strip())
    except ValueError as exc:
        raise KeyStoreError(f"{path}: not a base64url master key") from exc
    if len(key) != 32:
        raise KeyStoreError(f"{path}: the master key must be 32 bytes")
    return MasterKey(key, development=True)


def _write_new_file(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600; refuse to replace an existing file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails with FileExistsError instead of overwriting
    finally:
        os.unlink(tmp)


def _replace_file(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass
class _Snapshot:
    """The key records as read at one moment (`stamp`: every file's name, size and
    mtime), with their per-purpose sorted lists filled in as asked for."""

    stamp: tuple[tuple[str, int, int], ...]
    records: list[KeyRecord]
    by_purpose: dict[KeyPurpose | None, list[KeyRecord]] = field(default_factory=dict)


class KeyStore:
    """Reads and creates the gateway's keys under one folder."""

    def __init__(self, directory: Path, master: MasterKey | None) -> None:
        self.directory = directory
        self._sealing = master
        # Records are re-read when any key file's name, size or mtime changes (a new key,
        # a status change); unsealed material is kept by kid, which never changes.
        self._records: _Snapshot | None = None
        # Every file is written beside its final name and renamed into the folder, which
        # changes the folder's mtime: while that stays put, one stat of the folder stands
        # for a stat of every file (see `_unchanged`).
        self._folder: tuple[int, int, int] | None = None
        self._scanned = 0.0
        self._material: dict[str, dict[str, Any]] = {}
        self._epoch_keys: dict[str, EpochKey] = {}

    @classmethod
    def public_only(cls, directory: Path) -> KeyStore:
        """The key records and public keys, without the master key: for verifiers and
        other readers of public material. Anything needing a private key is refused."""
        return cls(directory, None)

    @property
    def _master(self) -> MasterKey:
        if self._sealing is None:
            raise KeyStoreError("this key store was opened for public keys only")
        return self._sealing

    @property
    def development_master_key(self) -> bool:
        return self._sealing is not None and self._sealing.development

    def _path(self, record: KeyRecord) -> Path:
        return self.directory / f"{record.purpose.value}-{record.kid}.json"

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*.json") if not p.name.startswith(".tmp-"))

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"{path}: unreadable key file") from exc
        return data

    def _folder_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.directory.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)

    def _unchanged(self, folder: tuple[int, int, int] | None, now: float) -> bool:
        """Whether the records read last still stand without a stat of every file: the
        folder is the same, its mtime and ctime as then, and (a change within the
        clock's granularity of the last scan could keep them) older than that scan by
        `RESCAN_SECONDS`; and the last full scan is at most `RESCAN_SECONDS` old (a file
        edited in place, which the folder does not show)."""
        if self._records is None or folder is None or folder != self._folder:
            return False
        if now - self._scanned > RESCAN_SECONDS:
            return False
        changed = max(folder[1], folder[2]) / 1e9
        return self._scanned - changed > RESCAN_SECONDS

    def _current(self) -> _Snapshot:
        now = time.time()
        folder = self._folder_stamp()
        snapshot = self._records
        if snapshot is not None and self._unchanged(folder, now):
            return snapshot
        files = self._files()
        stamp = tuple((p.name, st.st_size, st.st_mtime_ns) for p in files for st in (p.stat(),))
        if snapshot is None or snapshot.stamp != stamp:
            snapshot = _Snapshot(stamp, [KeyRecord.from_json(self._read(p)) for p in files])
            self._records = snapshot
        self._folder, self._scanned = folder, now
        return snapshot

    def records(self, purpose: KeyPurpose | None = None) -> list[KeyRecord]:
        # The sorted lists live in the snapshot they were sorted from: a thread that read
        # an older snapshot can only ever fill in that one, never the newer one another
        # thread has just put in place (so a retired key is never served from a cache).
        snapshot = self._current()
        ordered = snapshot.by_purpose.get(purpose)
        if ordered is None:
            found = snapshot.records
            chosen = found if purpose is None else [r for r in found if r.purpose == purpose]
            ordered = snapshot.by_purpose[purpose] = sorted(chosen, key=lambda r: r.created)
        return list(ordered)

    def active(self, purpose: KeyPurpose) -> KeyRecord:
        """The newest active key of a purpose."""
        active = [r for r in self.records(purpose) if r.status == "active"]
        if not active:
            raise KeyStoreError(f"no active {purpose.value} key; run `ketenpoort init`")
        return active[-1]

    def get(self, kid: str) -> KeyRecord:
        for record in self.records():
            if record.kid == kid:
                return record
        raise KeyStoreError(f"no key with kid {kid!r}")

    def missing(self) -> list[KeyPurpose]:
        return [p for p in KeyPurpose if not any(r.status == "active" for r in self.records(p))]

    def private_material(self, kid: str) -> dict[str, Any]:
        """The unsealed private material: {"jwk": {...}} or {"scalar": "<b64url>"}."""
        if kid in self._material:
            return self._material[kid]
        for path in self._files():
            data = self._read(path)
            if data.get("kid") != kid:
                continue
            record = KeyRecord.from_json(data)
            material: dict[str, Any] = json.loads(
                crypto.unseal(self._master.key, data["sealed"], record.aad())
            )
            self._material[kid] = material
            return material
        raise KeyStoreError(f"no key with kid {kid!r}")

    def private_jwk(self, kid: str) -> dict[str, Any]:
        jwk: dict[str, Any] = self.private_material(kid)["jwk"]
        return jwk

    def secret_scalar(self, kid: str) -> bytes:
        return crypto.b64url_decode(self.private_material(kid)["scalar"])

    def create(self, purpose: KeyPurpose, *, now: datetime | None = None) -> KeyRecord:
        """Create a new active key of `purpose`; never touches an existing file."""
        created = now or datetime.now(UTC)
        public: dict[str, Any] | None
        if purpose is KeyPurpose.TOKEN_SIGNING:
            private, public = crypto.generate_p256_jwk(use="sig", alg="ES256")
            material: dict[str, Any] = {"jwk": private}
            kid = public["kid"]
        elif purpose is KeyPurpose.MELDPUNT_ENCRYPTION:
            private, public = crypto.generate_p256_jwk(use="enc", alg="ECDH-ES+A256KW")
            material = {"jwk": private}
            kid = public["kid"]
        elif purpose is KeyPurpose.AUDIT_CHECKPOINT:
            private, public = crypto.generate_ed25519_jwk()
            material = {"jwk": private}
            kid = public["kid"]
        else:
            public = None
            material = {"scalar": crypto.b64url(crypto.generate_ristretto255_scalar())}
            kid = secrets.token_hex(8)
        record = KeyRecord(
            kid=kid,
            purpose=purpose,
            algorithm=ALGORITHMS[purpose],
            created=created,
            status="active",
            public_jwk=public,
        )
        sealed = crypto.seal(self._master.key, json.dumps(material).encode(), record.aad())
        make_private_dir(self.directory, narrow_existing=True)
        _write_new_file(
            self._path(record),
            json.dumps({**record.to_json(), "sealed": sealed}, indent=2).encode(),
        )
        log.info("key created", kid=kid, purpose=purpose.value, algorithm=record.algorithm)
        return record

    def seal_secret(self, plaintext: bytes, aad: bytes) -> dict[str, str]:
        """Seal another secret (e.g. a user's TOTP secret) under the master key."""
        return crypto.seal(self._master.key, plaintext, aad)

    def unseal_secret(self, sealed: dict[str, str], aad: bytes) -> bytes:
        return crypto.unseal(self._master.key, sealed, aad)

    def derive_secret(self, label: str, length: int = 32) -> bytes:
        """A secret for one named use (keyed hashes of idempotency keys, web session
        cookies, case notes): HKDF-SHA256 over the master key with `label` as info, the
        same in every process that holds the master key, never stored, and no use can
        learn another's."""
        return crypto.derive_key(self._master.key, f"ketenpoort:{label}".encode(), length)

    def ensure_all(self) -> list[KeyRecord]:
        """Create the keys that are missing; returns only the newly created ones."""
        return [self.create(purpose) for purpose in self.missing()]

    def retire(self, kid: str) -> KeyRecord:
        """Mark a key retired (kept for verifying and decrypting what it made)."""
        for path in self._files():
            data = self._read(path)
            if data.get("kid") == kid:
                data["status"] = "retired"
                _replace_file(path, json.dumps(data, indent=2).encode())
                return KeyRecord.from_json(data)
        raise KeyStoreError(f"no key with kid {kid!r}")

    # -- payload epoch keys (crypto-shredding) --------------------------------------------
    #
    # One data key per erasure month, in `epochs/` beside the other keys (never in the
    # database): a stored payload is wrapped under the key of the month its signal is
    # erased in; once every signal of a month is erased the file is deleted, and a
    # database backup from before then cannot bring those payloads back.

    @property
    def epoch_directory(self) -> Path:
        return self.directory / EPOCH_DIR

    def _epoch_path(self, month: str) -> Path:
        if not EPOCH_MONTH.fullmatch(month):
            raise ValueError(f"not an epoch month: {month!r}")
        return self.epoch_directory / f"epoch-{month}.json"

    def epochs(self) -> list[EpochKey]:
        """The epoch keys that exist, oldest month first."""
        if not self.epoch_directory.is_dir():
            return []
        found = []
        for path in sorted(self.epoch_directory.glob("epoch-*.json")):
            data = self._read(path)
            found.append(
                EpochKey(data["kid"], data["month"], datetime.fromisoformat(data["created"]))
            )
        return found

    def epoch_key(self, month: str, *, now: datetime | None = None) -> EpochKey:
        """The epoch key of `month` ("YYYY-MM"), created when missing (safe in several
        processes at once: the first file written wins and the others read it)."""
        known = self._epoch_keys.get(month)
        if known is not None:
            return known  # a month's key changes only by destruction, after the month
        path = self._epoch_path(month)
        if not path.exists():
            kid = f"{month}.{secrets.token_hex(8)}"
            sealed = crypto.seal(self._master.key, secrets.token_bytes(32), _epoch_aad(kid))
            created = now or datetime.now(UTC)
            make_private_dir(self.directory, narrow_existing=True)
            make_private_dir(self.epoch_directory, narrow_existing=True)
            record = {"kid": kid, "month": month, "created": created.isoformat(), "sealed": sealed}
            try:
                _write_new_file(path, json.dumps(record, indent=2).encode())
                log.info("epoch key created", kid=kid, month=month)
            except FileExistsError:
                pass  # another process was first: use its key
        data = self._read(path)
        found = EpochKey(data["kid"], data["month"], datetime.fromisoformat(data["created"]))
        self._epoch_keys[month] = found
        return found

    def epoch_secret(self, kid: str) -> bytes:
        """The 32-byte data key of epoch `kid`; `KeyStoreError` once it is destroyed."""
        cached = self._material.get(f"epoch:{kid}")
        if cached is not None:
            return crypto.b64url_decode(cached["key"])
        month = kid.split(".", 1)[0]
        try:
            path = self._epoch_path(month)
        except ValueError:
            raise KeyStoreError(f"not an epoch key id: {kid!r}") from None
        if not path.exists():
            raise KeyStoreError(f"epoch key {kid} does not exist (destroyed?)")
        data = self._read(path)
        if data.get("kid") != kid:
            raise KeyStoreError(f"epoch key {kid} does not exist (destroyed?)")
        secret = crypto.unseal(self._master.key, data["sealed"], _epoch_aad(kid))
        self._material[f"epoch:{kid}"] = {"key": crypto.b64url(secret)}
        return secret

    def destroy_epoch(self, kid: str) -> bool:
        """Delete epoch key `kid` for good; False when it was already gone."""
        self._material.pop(f"epoch:{kid}", None)
        month = kid.split(".", 1)[0]
        self._epoch_keys.pop(month, None)
        path = self._epoch_path(month)
        if not path.exists() or self._read(path).get("kid") != kid:
            return False
        path.unlink()
        directory = os.open(self.epoch_directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the deletion itself reaches the disk
        finally:
            os.close(directory)
        log.info("epoch key destroyed", kid=kid, month=month)
        return True


EPOCH_DIR = "epochs"
EPOCH_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _epoch_aad(kid: str) -> bytes:
    return f"ketenpoort-epoch-key:{kid}".encode()


@dataclass(frozen=True)
class EpochKey:
    """A payload data key for one erasure month ("YYYY-MM")."""

    kid: str
    month: str
    created: datetime
