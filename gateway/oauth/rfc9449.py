"""RFC 9449 DPoP proofs: check one proof against the request it came with.

The checks of §4.3: one well-formed JWT, `typ: dpop+jwt`, an allowed asymmetric `alg`,
a public `jwk` header that verifies the signature, `jti`, `htm` and `htu` matching the
request (ignoring query and fragment), `iat` within the window, and at a protected
resource `ath` = hash of the access token. Replay of `jti` is checked by the caller
against the shared database cache.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.crypto.jose import (
    JoseError,
    sha256_b64url,
    thumbprint,
    unverified_header,
    verify_embedded_jwk_jws,
)

PROOF_TYPE = "dpop+jwt"
MAX_JTI_LENGTH = 256


class InvalidProof(Exception):
    """The DPoP proof is not acceptable. The message is safe to show."""


@dataclass(frozen=True)
class Proof:
    jkt: str
    jti: str
    iat: int


def normalise_uri(uri: str) -> str:
    """Scheme and host lower-cased, default port dropped, no query or fragment."""
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    port = parts.port
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" if port in (None, default) else f"[{host}]:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def verify_proof(
    proof: str,
    *,
    method: str,
    uri: str,
    now: int,
    max_age: int,
    skew: int,
    algorithms: Collection[str],
    access_token: str | None = None,
) -> Proof:
    try:
        header = unverified_header(proof)
    except JoseError:
        raise InvalidProof("the DPoP proof is not a JWT") from None
    if header.get("typ") != PROOF_TYPE:
        raise InvalidProof("the DPoP proof has no typ dpop+jwt header")
    try:
        _, claims, jwk = verify_embedded_jwk_jws(proof, algorithms)
    except JoseError:
        raise InvalidProof("the DPoP proof signature or key is not acceptable") from None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidProof("the DPoP proof has no valid jti")
    if claims.get("htm") != method:
        raise InvalidProof("the DPoP proof htm does not match the request method")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalise_uri(htu) != normalise_uri(uri):
        raise InvalidProof("the DPoP proof htu does not match the request URI")
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidProof("the DPoP proof has no valid iat")
    if iat > now + skew:
        raise InvalidProof(
            f"the DPoP proof iat is more than {skew} s in the future"
            " (clock skew: check the client's clock)"
        )
    if iat < now - max_age:
        raise InvalidProof(
            f"the DPoP proof iat is more than {max_age} s old (check the client's clock)"
        )
    if access_token is not None and claims.get("ath") != sha256_b64url(access_token):
        raise InvalidProof("the DPoP proof ath does not match the access token")
    return Proof(jkt=thumbprint(jwk), jti=jti, iat=iat)
