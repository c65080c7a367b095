"""The token-signing key, read from the key store and cached for a short while.

Reading and unsealing a key file on every request would cost more than the signature;
the cache is refreshed every `ttl` seconds (so a rotation is picked up) and at once when
a token names a `kid` the cache does not know.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from gateway.keys import KeyPurpose, KeyStore


class TokenSigningKeys:
    def __init__(self, store: KeyStore, ttl: int = 60) -> None:
        self._store = store
        self._ttl = ttl
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
            active = self._store.active(KeyPurpose.TOKEN_SIGNING)
            self._active = (active.kid, self._store.private_jwk(active.kid))
            self._public = public
            self._loaded = time.monotonic()

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
        self._refresh()
        return {"keys": [dict(k) for k in self._public.values()]}
