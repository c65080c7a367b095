"""The authorization server: every OAuth decision wired in this one module.

authlib supplies the protocol skeleton (request parsing, grant dispatch, client
authentication registry, RFC 7662/7009 endpoints, RFC 6749 error bodies). Where it
falls short of the profile (DESIGN.md "OAuth profile") our code decides:
- `private_key_jwt` only, with the profile's assertion rules (`rfc7523.PrivateKeyJWT`);
- RFC 9068 tokens with our claims and a 600 s lifetime (`rfc9068`), no refresh token;
- DPoP binding at the token endpoint (`rfc9449`), required for `require_dpop` clients;
- requested scopes intersected with the client's allowed scopes;
- introspection and revocation that understand JWT access tokens (revocation is a
  `jti` denylist in the database, honoured by every worker);
- a token bucket per authenticated client, failures (only) counted per address, and
  bounded audit of refusals (`gateway.ratelimit`, `gateway.oauth.failures`).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import (
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Response, g, request
from werkzeug.datastructures import MultiDict

from gateway.audit import AuditEvent, record_event
from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyStore
from gateway.logs import get_logger
from gateway.oauth import rfc9068, store
from gateway.oauth.clients import AUTH_METHOD, ClientModel
from gateway.oauth.config import OAuthConfig
from gateway.oauth.errors import InvalidDPoPProofError, RateLimitedError, safe_description
from gateway.oauth.failures import RefusalAudit
from gateway.oauth.keys import TokenSigningKeys
from gateway.oauth.rfc7523 import PrivateKeyJWT
from gateway.oauth.rfc9449 import InvalidProof, verify_proof
from gateway.partners.registry import MELDPUNT_ID, MELDPUNT_SCOPES, find_client
from gateway.ratelimit import TOKEN, V1, ClientRateLimiter, RateLimited
from gateway.ratelimit.addresses import client_address

log = get_logger(__name__)

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path
INTROSPECTION_PATH = "/oauth/introspect"
REVOCATION_PATH = "/oauth/revoke"
JWKS_PATH = "/oauth/jwks"


@dataclass
class TokenInfo:
    """An access token found by introspection or revocation (authlib's token protocol)."""

    access: rfc9068.AccessToken
    revoked: bool
    now: int

    def is_expired(self) -> bool:
        return self.access.expires_at <= self.now

    def is_revoked(self) -> bool:
        return self.revoked

    def check_client(self, client: ClientModel) -> bool:
        return client.record.client_id == self.access.client_id


class _FormPayload(OAuth2Payload):  # type: ignore[misc]
    """Parameters from the form body only: never from the query string."""

    def __init__(self, form: MultiDict[str, str]) -> None:
        self._form = form

    @property
    def data(self) -> MultiDict[str, str]:
        return self._form

    @property
    def datalist(self) -> dict[str, list[str]]:
        values: dict[str, list[str]] = defaultdict(list)
        for key in self._form:
            values[key].extend(self._form.getlist(key))
        return values


class _Request(OAuth2Request):  # type: ignore[misc]
    """The current Flask request, addressed by its external URL (issuer + path)."""

    def __init__(self, uri: str) -> None:
        super().__init__(method=request.method, uri=uri, headers=request.headers)
        self.payload = _FormPayload(request.form)

    @property
    def form(self) -> MultiDict[str, str]:
        return request.form

    @property
    def args(self) -> MultiDict[str, str]:
        return request.args


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]  # noqa: RUF012 - authlib's interface

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        service: OAuthService = self.server.service
        return service.issue_for(self.request.client, self.request.payload.scope)


class _TokenEndpoint:
    """What introspection and revocation share: private_key_jwt client authentication,
    a required `token` parameter, and the lookup of our JWTs."""

    CLIENT_AUTH_METHODS = [AUTH_METHOD]  # noqa: RUF012 - authlib's interface

    def __init__(self, server: GatewayServer) -> None:
        super().__init__(server)  # type: ignore[call-arg]
        self.service: OAuthService = server.service

    def check_params(self, request: Any, client: ClientModel) -> None:
        if not request.form.get("token"):
            raise InvalidRequestError(description="token is required")
        # RFC 7009/7662: a hint we cannot use is ignored, never an error.

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenInfo | None:
        return self.service.find_token(token_string)


class Introspection(_TokenEndpoint, IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662 for our JWTs: `active: false` for expired, revoked or foreign tokens."""

    def check_permission(self, token: TokenInfo, client: ClientModel, request: Any) -> bool:
        """A partner may introspect its own organisation's tokens; the meldpunt any."""
        return (
            token.access.organisation == client.record.organisation
            or client.record.organisation == MELDPUNT_ID
        )

    def introspect_token(self, token: TokenInfo) -> dict[str, Any]:
        claims = token.access.claims
        body = {
            "active": True,
            "scope": claims["scope"],
            "client_id": claims["client_id"],
            "token_type": "DPoP" if token.access.jkt else "Bearer",
            "exp": claims["exp"],
            "iat": claims["iat"],
            "iss": claims["iss"],
            "aud": claims["aud"],
            "sub": claims["sub"],
            "jti": claims["jti"],
            "org": claims["org"],
        }
        if token.access.jkt:
            body["cnf"] = {"jkt": token.access.jkt}
        return body

    def create_endpoint_response(
        self, request: Any
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        status, body, headers = super().create_endpoint_response(request)
        client: ClientModel = request.client
        with self.service.db.transaction() as session:
            record_event(
                session,
                AuditEvent(
                    action="token.introspect",
                    outcome="success",
                    actor=client.actor(),
                    resource_type="access-token",
                    resource_id=body.get("jti"),
                    detail={"active": body["active"]},
                ),
            )
        return status, body, headers


class Revocation(_TokenEndpoint, RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 for our JWTs: the `jti` goes on a shared denylist until it expires."""

    def create_endpoint_response(
        self, request: Any
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = self.authenticate_endpoint_client(request)
        token: TokenInfo | None = self.authenticate_token(request, client)
        self.service.revoke(client, token)
        return 200, {}, default_json_headers


class GatewayServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, service: OAuthService) -> None:
        super().__init__(scopes_supported=list(MELDPUNT_SCOPES))
        self.service = service

    def query_client(self, client_id: str) -> ClientModel | None:
        with self.service.db.transaction(write=False) as session:
            record = find_client(session, client_id)
        return ClientModel(record) if record is not None else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Tokens are self-contained JWTs; issuance is recorded in the audit log."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, _request: Any) -> OAuth2Request:
        return _Request(self.service.issuer + request.path)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        payload = json.dumps(body) if isinstance(body, dict) else body
        return Response(payload, status=status, headers=headers)

    def handle_error_response(self, _request: Any, error: OAuth2Error) -> Response:
        retry_after = self.service.record_refusal(error)
        if retry_after is not None and not isinstance(error, RateLimitedError):
            self.service.count_rate_limited("anonymous", "address")
            error = RateLimitedError(retry_after, "too many failed requests from this address")
        if isinstance(error, UnsupportedGrantTypeError):
            error = UnsupportedGrantTypeError("unsupported")
            error.description = "only grant_type=client_credentials is supported"
        return self.handle_response(*error(None))


class OAuthService:
    """The authorization server of one app: endpoints, tokens, limits and audit."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        keys: KeyStore,
        config: OAuthConfig | None = None,
        clock: Callable[[], float] = time.time,
        on_rate_limited: Callable[[str, str], None] = lambda _client, _endpoint: None,
    ) -> None:
        self.config = config or OAuthConfig()
        #: Counts one 429 by client id and endpoint kind (the app passes `/metrics`).
        self.count_rate_limited = on_rate_limited
        self.issuer = settings.issuer
        self.token_endpoint = self.issuer + TOKEN_PATH
        self.db = db
        self.clock = clock
        self.signing_keys = TokenSigningKeys(keys, ttl=self.config.key_cache_seconds)
        self.config.failures_per_address = settings.failures_per_address
        self.refusals = RefusalAudit(db, self.config, self.now)
        self.limits = ClientRateLimiter(
            db,
            {V1: settings.rate_limit_per_client, TOKEN: settings.token_rate_limit_per_client},
            clock=lambda: self.clock(),
            on_limited=on_rate_limited,
        )
        self.server = GatewayServer(self)
        self.server.register_client_auth_method(AUTH_METHOD, PrivateKeyJWT(self))
        self.server.register_grant(ClientCredentials)
        self.server.register_endpoint(Introspection)
        self.server.register_endpoint(Revocation)

    # -- time, replay, limits -------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def consume_jti(self, purpose: str, issuer: str, jti: str, *, expires_at: int) -> bool:
        digest = store.jti_digest(purpose, issuer, jti)
        with self.db.transaction() as session:
            return store.consume_jti(session, digest, expires_at=expires_at, now=self.now())

    def note_claimed_client(self, client_id: str) -> None:
        """A registered client id named by a request, for the refusal audit."""
        g.oauth_claimed_client = client_id

    def note_authenticated_client(self, client_id: str) -> None:
        """The client proved itself: its failures are no longer the address's."""
        g.oauth_authenticated_client = client_id

    def record_refusal(self, error: OAuth2Error) -> int | None:
        """Audit the refusal; a failure before client authentication also counts against
        the address. Returns the seconds to wait when the address is past its threshold."""
        description = (
            None
            if isinstance(error, UnsupportedGrantTypeError)
            else safe_description(str(error.description or ""))
        )
        return self.refusals.record(
            endpoint=request.path,
            error=str(error.error),
            description=description,
            claimed_client=g.get("oauth_claimed_client"),
            address=client_address(),
            failed_authentication=g.get("oauth_authenticated_client") is None,
        )

    # -- endpoints ------------------------------------------------------------------

    def _guarded(self, respond: Callable[[], Response]) -> Response:
        """Form-only parameters, then authlib's endpoint.

        An address past its failure threshold gets 429 at once only for a request that
        cannot authenticate at all (no client assertion); one that carries an assertion
        is verified, and if it authenticates, judged by its client's bucket alone.
        """
        try:
            if not request.form.get("client_assertion"):
                retry_after = self.refusals.address_blocked(client_address())
                if retry_after is not None:
                    self.count_rate_limited("anonymous", "address")
                    raise RateLimitedError(
                        retry_after, "too many failed requests from this address"
                    )
            if request.args:
                raise InvalidRequestError(
                    description="parameters must be sent in the form body, not the query"
                )
        except OAuth2Error as error:
            return self.server.handle_error_response(None, error)
        return respond()

    def token_response(self) -> Response:
        return self._guarded(lambda: self.server.create_token_response(None))

    def introspection_response(self) -> Response:
        return self._guarded(
            lambda: self.server.create_endpoint_response(Introspection.ENDPOINT_NAME, None)
        )

    def revocation_response(self) -> Response:
        return self._guarded(
            lambda: self.server.create_endpoint_response(Revocation.ENDPOINT_NAME, None)
        )

    # -- issuing --------------------------------------------------------------------

    def grant_scopes(self, client: ClientModel, requested: str | None) -> tuple[str, ...]:
        """Requested ∩ allowed; nothing requested means everything allowed."""
        allowed = client.record.scopes
        if requested is None or not requested.strip():
            granted = tuple(s for s in MELDPUNT_SCOPES if s in allowed)
        else:
            granted = tuple(dict.fromkeys(s for s in requested.split() if s in allowed))
        if not granted:
            raise InvalidScopeError(description="none of the requested scopes is allowed")
        return granted

    def token_dpop_binding(self, client: ClientModel) -> str | None:
        proofs = request.headers.getlist("DPoP")
        if not proofs:
            if client.record.require_dpop:
                raise InvalidDPoPProofError(description="this client must send a DPoP proof")
            return None
        if len(proofs) != 1:
            raise InvalidDPoPProofError(description="send exactly one DPoP header")
        now = self.now()
        try:
            proof = verify_proof(
                proofs[0],
                method="POST",
                uri=self.token_endpoint,
                now=now,
                max_age=self.config.dpop_max_age,
                skew=self.config.clock_skew,
                algorithms=self.config.client_algorithms,
            )
        except InvalidProof as exc:
            raise InvalidDPoPProofError(description=safe_description(str(exc))) from None
        expires = proof.iat + self.config.dpop_max_age + self.config.clock_skew
        if not self.consume_jti("dpop", proof.jkt, proof.jti, expires_at=expires):
            raise InvalidDPoPProofError(description="the DPoP proof was used before")
        return proof.jkt

    def issue_for(
        self, client: ClientModel, requested_scope: str | None
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        try:
            self.limits.check(TOKEN, client.record.client_id)
        except RateLimited as limited:
            raise RateLimitedError(
                limited.retry_after, "too many token requests for this client"
            ) from None
        scopes = self.grant_scopes(client, requested_scope)
        jkt = self.token_dpop_binding(client)
        access = rfc9068.issue(
            self.signing_keys,
            issuer=self.issuer,
            client_id=client.record.client_id,
            organisation=client.record.organisation,
            scopes=scopes,
            now=self.now(),
            lifetime=self.config.access_token_lifetime,
            jkt=jkt,
        )
        token_type = "DPoP" if jkt else "Bearer"
        with self.db.transaction() as session:
            record_event(
                session,
                AuditEvent(
                    action="token.issue",
                    outcome="success",
                    actor=client.actor(),
                    resource_type="access-token",
                    resource_id=access.jti,
                    detail={
                        "scope": " ".join(scopes),
                        "tokenType": token_type,
                        "expiresAt": access.expires_at,
                        "dpopBound": jkt is not None,
                    },
                ),
            )
        body = {
            "access_token": access.token,
            "token_type": token_type,
            "expires_in": self.config.access_token_lifetime,
            "scope": " ".join(scopes),
        }
        return 200, body, default_json_headers

    # -- introspection and revocation -------------------------------------------------

    def find_token(self, token_string: str) -> TokenInfo | None:
        """One of our access tokens (even expired), or None for anything else."""
        now = self.now()
        try:
            access = rfc9068.decode(
                token_string, self.signing_keys, issuer=self.issuer, now=now, allow_expired=True
            )
        except rfc9068.InvalidAccessToken:
            return None
        with self.db.transaction(write=False) as session:
            revoked = store.is_revoked(session, access.jti)
        return TokenInfo(access, revoked, now)

    def revoke(self, client: ClientModel, token: TokenInfo | None) -> None:
        now = self.now()
        with self.db.transaction() as session:
            if token is not None and not token.is_expired():
                store.revoke(
                    session,
                    jti=token.access.jti,
                    client_id=token.access.client_id,
                    expires_at=token.access.expires_at,
                    now=now,
                )
            record_event(
                session,
                AuditEvent(
                    action="token.revoke",
                    outcome="success",
                    actor=client.actor(),
                    resource_type="access-token",
                    resource_id=token.access.jti if token else None,
                    detail={"known": token is not None},
                ),
            )

    # -- published documents ------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata."""
        algs = list(self.config.client_algorithms)
        methods = [AUTH_METHOD]
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.issuer + JWKS_PATH,
            "introspection_endpoint": self.issuer + INTROSPECTION_PATH,
            "revocation_endpoint": self.issuer + REVOCATION_PATH,
            "scopes_supported": list(MELDPUNT_SCOPES),
            # RFC 8414 requires this member; there is no authorization endpoint.
            "response_types_supported": ["none"],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": methods,
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "introspection_endpoint_auth_methods_supported": methods,
            "introspection_endpoint_auth_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_signing_alg_values_supported": algs,
            "dpop_signing_alg_values_supported": algs,
            "service_documentation": self.issuer + "/docs",
        }

    def jwks(self) -> dict[str, Any]:
        return self.signing_keys.jwks()
