"""The only place that imports cryptographic primitives and JOSE libraries.

Everything else asks this package for a named operation ("seal these bytes under the
master key", "make a P-256 signing key"), so the algorithms in use can be read in one
place and changed in one place.
"""

from __future__ import annotations

import base64
import os
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, OKPKey

#: Order of the ristretto255 group (RFC 9496 §4), the modulus of pseudonym-key scalars.
RISTRETTO255_ORDER = 2**252 + 27742317777372353535851937790883648493


class CryptoError(Exception):
    """A seal failed to open (wrong key or altered bytes). Deliberately opaque."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def random_master_key() -> bytes:
    return secrets.token_bytes(32)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> dict[str, str]:
    """AES-256-GCM with a random 96-bit nonce; `aad` binds the ciphertext to its record."""
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, aad)
    return {"alg": "A256GCM", "nonce": b64url(nonce), "ciphertext": b64url(ciphertext)}


def derive_key(key: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869): a key for one named use, derived from the master key."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


def unseal(key: bytes, sealed: dict[str, str], aad: bytes) -> bytes:
    if sealed.get("alg") != "A256GCM":
        raise CryptoError("unsupported seal algorithm")
    try:
        return AESGCM(key).decrypt(
            b64url_decode(sealed["nonce"]), b64url_decode(sealed["ciphertext"]), aad
        )
    except (InvalidTag, KeyError, ValueError) as exc:
        raise CryptoError("sealed key material cannot be opened") from exc


def generate_p256_jwk(*, use: str, alg: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new P-256 key as (private JWK, public JWK), `kid` = RFC 7638 thumbprint."""
    key = ECKey.generate_key("P-256", private=True)
    kid = key.thumbprint()
    extra = {"kid": kid, "use": use, "alg": alg}
    return {**key.as_dict(private=True), **extra}, {**key.as_dict(private=False), **extra}


def generate_ed25519_jwk() -> tuple[dict[str, Any], dict[str, Any]]:
    key = OKPKey.generate_key("Ed25519", private=True)
    kid = key.thumbprint()
    extra = {"kid": kid, "use": "sig", "alg": "EdDSA"}
    return {**key.as_dict(private=True), **extra}, {**key.as_dict(private=False), **extra}


def generate_ristretto255_scalar() -> bytes:
    """A uniformly random non-zero scalar mod the group order, 32 bytes little-endian."""
    while True:
        scalar = int.from_bytes(secrets.token_bytes(64), "little") % RISTRETTO255_ORDER
        if scalar:
            return scalar.to_bytes(32, "little")
