"""The directory's current encryption keys, cached per process for the envelope check.

Reading the whole directory for every signal cost a query and JSON decoding per
request, for data that changes a few times a year. The cache keeps the guarantees:
- a kid the cache does not know is looked up again at once (a key added in another
  process is accepted on its first use);
- a change made in this process (organisation added or disabled, meldpunt key
  replaced) invalidates it at once (`registry.directory_generation`);
- a removal made in another process is seen within `TTL_SECONDS`.
The reload runs in its own short read transaction, outside the request's write lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.db import Database
from gateway.partners.registry import active_directory, directory_generation

TTL_SECONDS = 5.0

#: kid -> (organisation id, public JWK), as `envelope.check_envelope` takes it.
Keys = dict[str, tuple[str, dict[str, Any]]]


def load_directory(db: Database) -> tuple[Keys, dict[str, str]]:
    """Every current encryption key of every active organisation, by kid, and each
    active organisation's kind (the envelope check enforces the recipient kinds)."""
    keys: Keys = {}
    kinds: dict[str, str] = {}
    with db.transaction(write=False) as session:
        for organisation in active_directory(session):
            kinds[organisation.id] = organisation.kind
            for jwk in organisation.encryption_jwks.get("keys", []):
                if "kid" in jwk:
                    keys[jwk["kid"]] = (organisation.id, jwk)
    return keys, kinds


def load_keys(db: Database) -> Keys:
    """Every current encryption key of every active organisation, by kid."""
    return load_directory(db)[0]


@dataclass(frozen=True)
class _Snapshot:
    keys: Keys
    kinds: dict[str, str]
    loaded_at: float
    generation: int


class DirectoryCache:
    """One per app and process; thread-safe (a reload replaces the snapshot whole)."""

    def __init__(self, db: Database, ttl: float = TTL_SECONDS) -> None:
        self.db = db
        self.ttl = ttl
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def _fresh(self, snapshot: _Snapshot | None) -> bool:
        return (
            snapshot is not None
            and snapshot.generation == directory_generation()
            and time.monotonic() - snapshot.loaded_at < self.ttl
        )

    def reload(self) -> Keys:
        with self._lock:
            generation = directory_generation()  # before reading: a later change reloads
            keys, kinds = load_directory(self.db)
            self._snapshot = _Snapshot(keys, kinds, time.monotonic(), generation)
            return keys

    def kind_of(self, organisation: str) -> str | None:
        """The organisation's kind (None for an unknown or disabled organisation)."""
        self.current()
        snapshot = self._snapshot
        return snapshot.kinds.get(organisation) if snapshot is not None else None

    def current(self) -> Keys:
        snapshot = self._snapshot
        if snapshot is not None and self._fresh(snapshot):
            return snapshot.keys
        return self.reload()

    def view(self) -> DirectoryView:
        """A read-only mapping for one request that reloads once on an unknown kid."""
        return DirectoryView(self)


class DirectoryView(Mapping[str, tuple[str, Mapping[str, Any]]]):
    def __init__(self, cache: DirectoryCache) -> None:
        self._cache = cache
        self._keys = cache.current()
        self._reloaded = False

    def _lookup(self, kid: str) -> tuple[str, dict[str, Any]] | None:
        found = self._keys.get(kid)
        if found is None and not self._reloaded:
            self._reloaded = True
            self._keys = self._cache.reload()
            found = self._keys.get(kid)
        return found

    def kind_of(self, organisation: str) -> str | None:
        return self._cache.kind_of(organisation)

    def __getitem__(self, kid: str) -> tuple[str, Mapping[str, Any]]:
        found = self._lookup(kid)
        if found is None:
            raise KeyError(kid)
        return found

    def get(self, kid: str, default: Any = None) -> Any:
        found = self._lookup(kid)
        return default if found is None else found

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
