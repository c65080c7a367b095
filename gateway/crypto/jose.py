"""JOSE primitives for OAuth: JWK checks, JWS signing and verification, thumbprints.

Algorithms are always passed as an allow-list and checked against the key type before
any signature is verified, so `none`, HMAC (including "HS256 keyed with the public
key") and algorithm/key confusion never reach a verifier. Every verification failure
surfaces as one `JoseError` with a short reason that is safe to show a client.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError as _LibraryJoseError
from joserfc.jwk import ECKey, Key, RSAKey, import_key
from joserfc.jws import JWSRegistry

from gateway.crypto import b64url, b64url_decode

#: Client signing algorithms of the profile (RFC 7523 assertions, DPoP proofs).
CLIENT_SIGNING_ALGORITHMS = ("ES256", "PS256", "RS256")
#: Key-management algorithms a partner's encryption key may name (DESIGN.md "Payloads").
ENCRYPTION_ALGORITHMS = ("ECDH-ES+A256KW", "RSA-OAEP-256")
MIN_RSA_BITS = 2048
MAX_HEADER_BYTES = 4096
#: JWK members that only a private (or symmetric) key has.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JoseError(Exception):
    """A JWS did not verify, or a JWK is not acceptable. The message is safe to show."""


def _key_type_for(alg: str) -> str:
    if alg.startswith("ES"):
        return "EC"
    if alg.startswith(("PS", "RS", "RSA-OAEP")):
        return "RSA"
    if alg.startswith("ECDH-ES"):
        return "EC"
    raise JoseError(f"algorithm {alg} is not allowed")


def check_public_jwk(jwk: Mapping[str, Any], *, require_kid: bool = True) -> dict[str, Any]:
    """Refuse private, symmetric, small-RSA, non-P-256 EC and kid-less keys.

    Returns the key as a plain dict (public members only, as given).
    """
    if not isinstance(jwk, Mapping):
        raise JoseError("a JWK must be a JSON object")
    kid = jwk.get("kid")
    label = f"key {kid!r}" if isinstance(kid, str) else "a key"
    if require_kid and (not isinstance(kid, str) or not kid):
        raise JoseError("every key needs a `kid`")
    private = sorted(PRIVATE_MEMBERS & set(jwk))
    if private:
        raise JoseError(
            f"{label} contains private key material ({', '.join(private)}); give only public keys"
        )
    kty = jwk.get("kty")
    if kty == "EC":
        if jwk.get("crv") != "P-256":
            raise JoseError(f"{label}: only EC keys on curve P-256 are accepted")
    elif kty == "RSA":
        pass
    else:
        raise JoseError(f"{label}: key type {kty!r} is not accepted (use EC P-256 or RSA)")
    try:
        key = import_key(dict(jwk))
    except (_LibraryJoseError, ValueError, TypeError, KeyError) as exc:
        raise JoseError(f"{label} is not a valid {kty} public key") from exc
    if isinstance(key, RSAKey):
        bits = key.raw_value.key_size
        if bits < MIN_RSA_BITS:
            raise JoseError(f"{label}: RSA keys must have at least {MIN_RSA_BITS} bits")
    alg = jwk.get("alg")
    if alg is not None:
        allowed = CLIENT_SIGNING_ALGORITHMS + ENCRYPTION_ALGORITHMS
        if alg not in allowed or _key_type_for(str(alg)) != kty:
            raise JoseError(f"{label}: algorithm {alg!r} does not fit an accepted {kty} key")
    return dict(jwk)


def key_use(jwk: Mapping[str, Any]) -> str | None:
    """`sig` or `enc`: the `use` member, or else what the `alg` member implies."""
    use = jwk.get("use")
    if use in {"sig", "enc"}:
        return str(use)
    alg = jwk.get("alg")
    if alg in CLIENT_SIGNING_ALGORITHMS:
        return "sig"
    if alg in ENCRYPTION_ALGORITHMS:
        return "enc"
    return None


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url (DPoP `jkt`)."""
    if jwk.get("kty") == "EC":
        members = {"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    elif jwk.get("kty") == "RSA":
        members = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    else:
        raise JoseError("unsupported key type for a thumbprint")
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


def sha256_b64url(text: str) -> str:
    """base64url(SHA-256(ASCII text)): DPoP `ath`."""
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


def random_id(num_bytes: int = 32) -> str:
    """A random identifier (`jti`): 256 bits by default, base64url."""
    return b64url(secrets.token_bytes(num_bytes))


def sign_jws(
    header: Mapping[str, Any], claims: Mapping[str, Any], private_jwk: Mapping[str, Any]
) -> str:
    """A compact JWS over the JSON `claims` with the private JWK (alg from the header)."""
    key = import_key(dict(private_jwk))
    payload = json.dumps(dict(claims), separators=(",", ":")).encode()
    alg = str(header["alg"])
    return jws.serialize_compact(dict(header), payload, key, algorithms=[alg])


def _unverified_part(token: str, index: int, what: str) -> dict[str, Any]:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise JoseError("not a compact JWS")
    try:
        decoded = json.loads(b64url_decode(parts[index]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise JoseError(f"the JWS {what} is not valid JSON") from exc
    if not isinstance(decoded, dict):
        raise JoseError(f"the JWS {what} is not a JSON object")
    return decoded


def unverified_header(token: str) -> dict[str, Any]:
    """The protected header, decoded but NOT verified (to pick the key)."""
    return _unverified_part(token, 0, "header")


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload, decoded but NOT verified (to find which client claims to speak)."""
    return _unverified_part(token, 1, "payload")


def _import_verification_key(jwk: Mapping[str, Any]) -> Key:
    try:
        key: Key = import_key(dict(jwk))
    except (_LibraryJoseError, ValueError, TypeError, KeyError) as exc:
        raise JoseError("the verification key is not valid") from exc
    return key


def verify_jws(
    token: str,
    keys: Sequence[Mapping[str, Any]],
    algorithms: Collection[str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS with one of `keys` (chosen by `kid`) under an allowed alg.

    Returns (header, claims). The claims are NOT validated here: callers check them.
    """
    header = unverified_header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise JoseError("the JWS algorithm is not accepted")
    if "crit" in header:
        raise JoseError("critical header parameters are not supported")
    kid = header.get("kid")
    candidates = [k for k in keys if kid is None or k.get("kid") == kid]
    if kid is None and len(candidates) > 1:
        raise JoseError("the JWS header has no `kid` and more than one key is registered")
    wanted = _key_type_for(alg)
    candidates = [k for k in candidates if k.get("kty") == wanted]
    if not candidates:
        raise JoseError("no registered key matches the JWS `kid` and algorithm")
    jwk = candidates[0]
    if isinstance(jwk.get("use"), str) and jwk["use"] != "sig":
        raise JoseError("the matching key is not a signing key")
    key = _import_verification_key(jwk)
    if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
        raise JoseError("RSA key too small")
    if isinstance(key, ECKey) and key.curve_name != "P-256":
        raise JoseError("EC key not on P-256")
    registry = JWSRegistry(algorithms=[alg])
    # A DPoP proof carries its RSA public key in the header: more than joserfc's 512 bytes.
    registry.max_header_length = MAX_HEADER_BYTES
    try:
        obj = jws.deserialize_compact(token, key, registry=registry)
    except _LibraryJoseError as exc:
        raise JoseError("the signature does not verify") from exc
    except (ValueError, TypeError) as exc:
        raise JoseError("the JWS is malformed") from exc
    try:
        claims = json.loads(obj.payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JoseError("the JWS payload is not valid JSON") from exc
    if not isinstance(claims, dict):
        raise JoseError("the JWS payload is not a JSON object")
    return header, claims


def verify_embedded_jwk_jws(
    token: str, algorithms: Collection[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Verify a JWS whose public key travels in its own `jwk` header (DPoP proofs).

    Returns (header, claims, public jwk).
    """
    header = unverified_header(token)
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise JoseError("the header has no `jwk`")
    try:
        public = check_public_jwk(jwk, require_kid=False)
    except JoseError as exc:
        raise JoseError(f"the header `jwk` is not acceptable: {exc}") from exc
    candidate = {k: v for k, v in public.items() if k not in {"kid", "use"}}
    if header.get("kid") is not None:
        candidate["kid"] = header["kid"]
    verified_header, claims = verify_jws(token, [candidate], algorithms)
    return verified_header, claims, public
