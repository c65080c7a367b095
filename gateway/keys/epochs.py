"""Payloads at rest, wrapped under the epoch key of the month they are erased in.

A stored payload (the JWE as received) is sealed again with AES-256-GCM under the data
key of its signal's erasure month (`KeyStore.epoch_key`); the wrapped form is a small
JSON object `{"epoch": KID, "sealed": {...}}`, which no JWE can be mistaken for (a JWE
has no "epoch" member). Payloads stored before epochs existed are plain JWE text and
are read as they are. When the last signal of a month has been erased the retention
run destroys that month's key, so a copy of the database from before the erasure holds
only ciphertext nobody can open (crypto-shredding).
"""

from __future__ import annotations

import json
from datetime import datetime

from gateway import crypto
from gateway.crypto import CryptoError
from gateway.keys.store import KeyStore, KeyStoreError


class PayloadErased(KeyStoreError):
    """The payload's epoch key is destroyed: the payload was erased."""


def erasure_month(expires_at: datetime) -> str:
    """The epoch a signal's payload belongs to: the month ("YYYY-MM", UTC) of its erasure."""
    return f"{expires_at.year:04d}-{expires_at.month:02d}"


def _aad(kid: str) -> bytes:
    return f"ketenpoort-payload:{kid}".encode()


def seal_payload(keys: KeyStore, payload: str, expires_at: datetime) -> tuple[str, str]:
    """`payload` wrapped under its erasure month's key: (stored text, epoch key id)."""
    epoch = keys.epoch_key(erasure_month(expires_at))
    sealed = crypto.seal(keys.epoch_secret(epoch.kid), payload.encode("utf-8"), _aad(epoch.kid))
    return json.dumps({"epoch": epoch.kid, "sealed": sealed}, separators=(",", ":")), epoch.kid


def epoch_of(stored: str) -> str | None:
    """The epoch key id a stored payload is wrapped under; None for a plain (older) JWE."""
    try:
        data = json.loads(stored)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("epoch"), str) and "sealed" in data:
        return str(data["epoch"])
    return None


def open_payload(keys: KeyStore, stored: str) -> str:
    """The JWE text of a stored payload; `PayloadErased` when its epoch key is gone."""
    kid = epoch_of(stored)
    if kid is None:
        return stored  # stored before epochs: kept as received
    sealed = json.loads(stored)["sealed"]
    try:
        secret = keys.epoch_secret(kid)
    except KeyStoreError:
        raise PayloadErased(f"the epoch key {kid} of this payload is destroyed") from None
    try:
        return crypto.unseal(secret, sealed, _aad(kid)).decode("utf-8")
    except CryptoError:
        raise PayloadErased(f"this payload does not open under epoch key {kid}") from None
