"""The token-signing key, read from the key store and cached for a short while.

Reading and unsealing a key file on every request would cost more than the signature;
the cache is refreshed every `ttl` seconds (so a rotation is picked up) and at once when
a token names a `kid` the cache does not know. A rotated-in key is published in the
JWKS for a while before it signs (`publish_ahead`), and a retired key stays in the JWKS,
so every token it signed still verifies until it expires.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.keys import KeyPurpose, KeyRecord, KeyStore


class TokenSigningKeys:
    def __init__(self, store: KeyStore, ttl: int = 60, publish_ahead: int | None = None) -> None:
        self._store = store
        self._ttl = ttl
        #: How long a new key is published before it signs: this process's key cache
        #: lives `ttl`, and a verifier's JWKS cache as long again.
        self._publish_ahead = 2 * ttl if publish_ahead is None else publish_ahead
        self._lock = threading.Lock()
        self._loaded = 0.0
        self._active: tuple[str, dict[str, Any]] | None = None
        self._public: dict[str, dict[str, Any]] = {}

    def _refresh(self, *, force: bool = False) -> None:
        with self._lock:
            if not force and self._active and time.monotonic() - self._loaded < self._ttl:
                return
            records = self._store.records(KeyPurpose.TOKEN_SIGNING)
            public = {r.kid: dict(r.public_jwk or {}) for r in records if r.public_jwk}
            active = self._signing_record(records)
            self._active = (active.kid, self._store.private_jwk(active.kid))
            self._public = public
            self._loaded = time.monotonic()

    def _signing_record(self, records: list[KeyRecord]) -> KeyRecord:
        """The newest active key that has been in the JWKS for `publish_ahead` seconds (a
        rotated-in key is published before it signs anything); until then the key it
        replaces, retired or not; when none is that old yet, the one published longest."""
        ripe = datetime.now(UTC) - timedelta(seconds=self._publish_ahead)
        published = [r for r in records if r.created <= ripe]
        for candidates in ([r for r in published if r.status == "active"], published):
            if candidates:
                return max(candidates, key=lambda r: r.created)
        if records:
            return min(records, key=lambda r: r.created)
        return self._store.active(KeyPurpose.TOKEN_SIGNING)

    def signing_key(self) -> tuple[str, dict[str, Any]]:
        """(kid, private JWK) of the active token-signing key."""
        self._refresh()
        assert self._active is not None
        return self._active

    def public_key(self, kid: str) -> dict[str, Any] | None:
        self._refresh()
        if kid not in self._public and time.monotonic() - self._loaded > 5:
            self._refresh(force=True)
        return self._public.get(kid)

    def jwks(self) -> dict[str, Any]:
        """Every token-signing public key, read from the key store's records each time
        (a stat of its files): a rotated-in key is published at once, before it signs."""
        records = self._store.records(KeyPurpose.TOKEN_SIGNING)
        return {"keys": [dict(r.public_jwk) for r in records if r.public_jwk]}
