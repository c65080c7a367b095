"""`private_key_jwt` client authentication (RFC 7523 §2.2) under the profile's rules.

authlib's `JWTBearerClientAssertion` names the method `client_assertion_jwt`, accepts an
`aud` array with extra values and an assertion valid for a year, and rejects PS256. This
subclass keeps authlib's place in the server (it is the registered auth method) and
checks the assertion itself:
- `iss` = `sub` = a registered, active client id;
- `aud` a single string equal to the issuer or the token endpoint URL;
- `exp` in the future, `exp - iat` ≤ 300 s, `iat` at most 60 s ahead, `nbf` honoured;
- signed with one of the client's registered keys under ES256, PS256 or RS256 — never
  `none` or HMAC;
- `jti` never seen before, in the database replay cache shared by every worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from authlib.oauth2.rfc7523 import JWTBearerClientAssertion

from gateway.crypto.jose import JoseError, unverified_claims, verify_jws
from gateway.oauth.clients import ClientModel
from gateway.oauth.config import OAuthConfig
from gateway.oauth.errors import invalid_client

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_JTI_LENGTH = 256


class AssertionContext(Protocol):
    """What the assertion check needs from the authorization server (`OAuthService`)."""

    @property
    def issuer(self) -> str: ...

    @property
    def token_endpoint(self) -> str: ...

    @property
    def config(self) -> OAuthConfig: ...

    def now(self) -> int: ...

    def note_claimed_client(self, client_id: str) -> None: ...

    def note_authenticated_client(self, client_id: str) -> None: ...

    def consume_jti(self, purpose: str, issuer: str, jti: str, *, expires_at: int) -> bool: ...


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, service: AssertionContext) -> None:
        super().__init__(validate_jti=True, leeway=0)
        self.service = service

    def get_audiences(self) -> list[str]:
        return [self.service.issuer, self.service.token_endpoint]

    def __call__(
        self, query_client: Callable[[str], ClientModel | None], request: Any
    ) -> ClientModel | None:
        form = request.form
        authorization = request.headers.get("Authorization", "")
        if authorization:
            scheme = authorization.split(" ", 1)[0]
            raise invalid_client(
                f"client authentication with the {scheme[:20]} scheme is not accepted; "
                "use private_key_jwt",
                basic_attempted=scheme.lower() == "basic",
            )
        if form.get("client_secret"):
            raise invalid_client("client secrets are not accepted; use private_key_jwt")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise invalid_client("client authentication with private_key_jwt is required")
        for name in ("client_assertion", "client_assertion_type", "client_id"):
            if len(form.getlist(name)) > 1:
                raise invalid_client(f"{name} is given more than once")
        assertion = str(form["client_assertion"])
        try:
            unverified = unverified_claims(assertion)
        except JoseError:
            raise invalid_client("the client assertion is not a JWT") from None
        client_id = unverified.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise invalid_client("the client assertion has no sub")
        if form.get("client_id") not in (None, client_id):
            raise invalid_client("client_id does not match the assertion")
        client = query_client(client_id)
        if client is None:
            raise invalid_client("unknown client")
        self.service.note_claimed_client(client_id)
        if not client.record.active:
            raise invalid_client("the client is disabled")
        try:
            _, claims = verify_jws(
                assertion, list(client.record.signing_keys), self.service.config.client_algorithms
            )
        except JoseError as exc:
            raise invalid_client(f"the client assertion is not acceptable: {exc}") from None
        self.check_claims(claims, client_id)
        self.service.note_authenticated_client(client_id)
        request.client = client
        return client

    def check_claims(self, claims: dict[str, Any], client_id: str) -> None:
        config = self.service.config
        now = self.service.now()
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise invalid_client("the assertion iss and sub must both be the client id")
        aud = claims.get("aud")
        if not isinstance(aud, str):
            raise invalid_client("the assertion aud must be a single string")
        if aud not in self.get_audiences():
            raise invalid_client("the assertion aud must be the issuer or the token endpoint")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _is_int(exp) or not _is_int(iat):
            raise invalid_client("the assertion needs integer exp and iat claims")
        assert isinstance(exp, int) and isinstance(iat, int)
        if exp <= now:
            raise invalid_client("the assertion has expired (check the client's clock)")
        if iat > now + config.clock_skew:
            raise invalid_client(
                f"the assertion iat is more than {config.clock_skew} s in the future"
                " (clock skew: check the client's clock)"
            )
        if exp - iat > config.assertion_max_lifetime:
            raise invalid_client(
                f"the assertion may be valid for at most {config.assertion_max_lifetime} s"
            )
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_int(nbf) or nbf > now + config.clock_skew):
            raise invalid_client(
                "the assertion is not yet valid (clock skew: check the client's clock)"
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
            raise invalid_client("the assertion needs a jti")
        if not self.service.consume_jti("assertion", client_id, jti, expires_at=exp):
            raise invalid_client("the assertion was used before (replayed jti)")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
