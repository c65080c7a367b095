"""RFC 9068 JWT access tokens: issue them with the profile's claims, and check them.

Claims: `iss`, `aud` (both the issuer URL), `sub` = `client_id` = `azp` (the client),
`org`, `scope`, `iat`, `exp` (≤ 600 s later), `jti` (256 random bits) and, when bound
to a DPoP key, `cnf.jkt`. Header: `typ: at+jwt`, `alg: ES256`, `kid`. The checker
refuses a token without `typ: at+jwt` — unlike a plain JWT library's decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.crypto.jose import JoseError, random_id, sign_jws, unverified_header, verify_jws
from gateway.oauth.keys import TokenSigningKeys

TOKEN_TYPE_HEADER = "at+jwt"  # noqa: S105 - a media type, not a secret
ACCESS_TOKEN_ALGORITHM = "ES256"  # noqa: S105 - an algorithm name
REQUIRED_CLAIMS = ("iss", "aud", "sub", "client_id", "org", "scope", "iat", "exp", "jti")


class InvalidAccessToken(Exception):
    """The token is not one of ours, or no longer valid. The message is safe to show."""


@dataclass(frozen=True)
class AccessToken:
    token: str
    claims: dict[str, Any]

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    @property
    def organisation(self) -> str:
        return str(self.claims["org"])

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(str(self.claims["scope"]).split())

    @property
    def expires_at(self) -> int:
        return int(self.claims["exp"])

    @property
    def jkt(self) -> str | None:
        cnf = self.claims.get("cnf")
        if isinstance(cnf, dict) and isinstance(cnf.get("jkt"), str):
            return str(cnf["jkt"])
        return None


def issue(
    keys: TokenSigningKeys,
    *,
    issuer: str,
    client_id: str,
    organisation: str,
    scopes: tuple[str, ...],
    now: int,
    lifetime: int,
    jkt: str | None = None,
) -> AccessToken:
    kid, private = keys.signing_key()
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": issuer,
        "sub": client_id,
        "client_id": client_id,
        "azp": client_id,
        "org": organisation,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + lifetime,
        "jti": random_id(),
    }
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    header = {"typ": TOKEN_TYPE_HEADER, "alg": ACCESS_TOKEN_ALGORITHM, "kid": kid}
    return AccessToken(sign_jws(header, claims, private), claims)


def decode(
    token: str, keys: TokenSigningKeys, *, issuer: str, now: int, allow_expired: bool = False
) -> AccessToken:
    """Verify signature and `typ`, then `iss`, `aud`, `exp` and the claim set."""
    try:
        header = unverified_header(token)
    except JoseError:
        raise InvalidAccessToken("the access token is malformed") from None
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in {"at+jwt", "application/at+jwt"}:
        raise InvalidAccessToken("the access token has no typ at+jwt header")
    kid = header.get("kid")
    public = keys.public_key(kid) if isinstance(kid, str) else None
    if public is None:
        raise InvalidAccessToken("the access token was not signed by this issuer")
    try:
        _, claims = verify_jws(token, [public], (ACCESS_TOKEN_ALGORITHM,))
    except JoseError:
        raise InvalidAccessToken("the access token signature does not verify") from None
    missing = [c for c in REQUIRED_CLAIMS if c not in claims]
    if missing:
        raise InvalidAccessToken("the access token lacks required claims")
    if claims["iss"] != issuer:
        raise InvalidAccessToken("the access token has the wrong issuer")
    aud = claims["aud"]
    if not (aud == issuer or (isinstance(aud, list) and issuer in aud)):
        raise InvalidAccessToken("the access token is not meant for this resource")
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int) or not isinstance(iat, int) or isinstance(exp, bool):
        raise InvalidAccessToken("the access token has malformed times")
    if not allow_expired and exp <= now:
        raise InvalidAccessToken("the access token has expired")
    if not isinstance(claims["scope"], str) or not isinstance(claims["client_id"], str):
        raise InvalidAccessToken("the access token has malformed claims")
    return AccessToken(token, claims)
