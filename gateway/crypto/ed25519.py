"""Ed25519 signing for audit checkpoints (RFC 8032), from the key store's OKP JWKs."""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.crypto import b64url_decode

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def _check_okp(jwk: dict[str, Any]) -> None:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("not an Ed25519 OKP key")


def public_key_bytes(jwk: dict[str, Any]) -> bytes:
    """The raw 32-byte public key of an Ed25519 JWK (public or private)."""
    _check_okp(jwk)
    raw = b64url_decode(jwk["x"])
    if len(raw) != PUBLIC_KEY_SIZE:
        raise ValueError("Ed25519 public key must be 32 bytes")
    return raw


def sign(private_jwk: dict[str, Any], message: bytes) -> bytes:
    _check_okp(private_jwk)
    key = Ed25519PrivateKey.from_private_bytes(b64url_decode(private_jwk["d"]))
    return key.sign(message)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `message` under `public_key`."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
