"""Client authentication (RFC 7523 private_key_jwt) and DPoP proofs (RFC 9449)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

SIGNING_ALGORITHMS = {"EC": "ES256", "RSA": "PS256"}

AnyKey = ECKey | RSAKey | OKPKey


def load_private_key(jwk: dict[str, Any]) -> AnyKey:
    key = import_key(jwk)
    if not isinstance(key, ECKey | RSAKey):
        raise ValueError("the signing key must be an EC P-256 or RSA key")
    if not key.is_private:
        raise ValueError("the signing key must include its private part")
    return key


def algorithm_for(key: AnyKey, jwk: dict[str, Any]) -> str:
    return str(jwk.get("alg") or SIGNING_ALGORITHMS[key.key_type])


def client_assertion(
    key: AnyKey, jwk: dict[str, Any], client_id: str, audience: str, now: float | None = None
) -> str:
    """A short-lived (60 s) assertion with a fresh `jti`: never reusable."""
    issued = int(now if now is not None else time.time())
    header = {"alg": algorithm_for(key, jwk), "typ": "JWT"}
    if "kid" in jwk:
        header["kid"] = jwk["kid"]
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + 60,
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(header, claims, key, algorithms=[header["alg"]])


def htu_of(url: str) -> str:
    """RFC 9449 §4.2: the request URI without query and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def access_token_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def dpop_proof(
    key: AnyKey,
    jwk: dict[str, Any],
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    now: float | None = None,
) -> str:
    alg = algorithm_for(key, jwk)
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(24),
        "htm": method.upper(),
        "htu": htu_of(url),
        "iat": int(now if now is not None else time.time()),
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    return jwt.encode(header, claims, key, algorithms=[alg])
