"""Resource protection: the token validator every `/v1` operation goes through.

It checks the RFC 9068 token (signature with our key, `typ: at+jwt`, `iss`, `aud`,
`exp`), that its `jti` is not revoked and its client still active (`gateway.partners`),
the DPoP binding and proof (RFC 9449 §7), and the scopes; it answers RFC 6750
`WWW-Authenticate` challenges. Tokens in the query string or a form body are refused
(RFC 9700 §2.4.3 / FAPI 2.0): only the Authorization header carries them.

Every authenticated request spends a token of its client's `/v1` bucket (429 with
`Retry-After` when empty); a failure to authenticate counts against the client address,
and past the threshold such failures are answered 429 (`gateway.oauth.failures`).

A verified token's claims are kept per process (`VerifiedTokens`, keyed by the token's
SHA-256, until its `exp`): a repeated token skips the signature check and the claim
parsing, never the revocation, client, DPoP, rate-limit and scope checks. Those that
need the database run in ONE short write transaction per request: revocation and client
standing in one indexed statement (no cache, so a revocation or a suspended partner
stops the very next request at every process), the DPoP proof's jti, the bucket.
"""

from __future__ import annotations

import hashlib
import threading

from flask import request
from sqlalchemy.engine import Connection

from gateway.actors import Actor
from gateway.errors import Forbidden, ProblemError, TooManyRequests, Unauthorized
from gateway.oauth import rfc9068, store
from gateway.oauth.errors import safe_description
from gateway.oauth.rfc9449 import InvalidProof, Proof, verify_proof
from gateway.oauth.server import OAuthService
from gateway.ratelimit import V1
from gateway.ratelimit.addresses import client_address

REALM = "ketenpoort"
FORM = "application/x-www-form-urlencoded"


class _Refusal(Exception):
    def __init__(
        self, error: str, description: str, *, dpop: bool, client: str | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.dpop = dpop
        self.client = client


class VerifiedTokens:
    """Access tokens whose signature and claims verified, per process, until their `exp`.

    Keyed by the SHA-256 of the whole token (signature included), so a hit is the very
    token that verified; the entry is dropped once `exp` passes. Expired entries are
    swept at most every `sweep_seconds` (on a `put`), so the cache holds about the
    tokens alive now rather than filling up to `limit` with dead ones over hours; at
    `limit` entries the expired ones go, then the oldest. Signing keys are retired,
    never removed, while their tokens can live, so a cached token stays as valid as a
    freshly verified one.
    """

    def __init__(self, limit: int = 10_000, sweep_seconds: int = 60) -> None:
        self.limit = limit
        self.sweep_seconds = sweep_seconds
        self._entries: dict[bytes, rfc9068.AccessToken] = {}
        self._lock = threading.Lock()
        self._swept = 0

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def get(self, token: str, now: int) -> rfc9068.AccessToken | None:
        key = self._key(token)
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found.claims["exp"] <= now:
                del self._entries[key]
                return None
        return found

    def put(self, access: rfc9068.AccessToken, now: int) -> None:
        key = self._key(access.token)
        with self._lock:
            if len(self._entries) >= self.limit or now - self._swept >= self.sweep_seconds:
                self._swept = now
                for old in [k for k, v in self._entries.items() if v.claims["exp"] <= now]:
                    del self._entries[old]
                while len(self._entries) >= self.limit:
                    del self._entries[next(iter(self._entries))]
            self._entries[key] = access

    def __len__(self) -> int:
        return len(self._entries)


class GatewayTokenValidator:
    def __init__(self, service: OAuthService) -> None:
        self.service = service
        self.verified = VerifiedTokens()

    @property
    def algs(self) -> str:
        return " ".join(self.service.config.client_algorithms)

    def challenge(self, *, dpop: bool, error: str | None = None, description: str = "") -> str:
        parts = [f'DPoP algs="{self.algs}"'] if dpop else [f'Bearer realm="{REALM}"']
        if error:
            parts.append(f'error="{error}"')
            if description:
                parts.append(f'error_description="{safe_description(description)}"')
        return ", ".join(parts)

    def authenticate(self, required_scopes: tuple[str, ...]) -> Actor:
        try:
            return self._authenticate(required_scopes)
        except _Refusal as refusal:
            raise self._refuse(refusal) from None

    def _refuse(self, refusal: _Refusal) -> ProblemError:
        route = request.url_rule.rule if request.url_rule else request.path
        retry_after = self.service.refusals.record(
            endpoint=route,
            error=refusal.error,
            description=refusal.description,
            claimed_client=refusal.client,
            address=client_address(),
            failed_authentication=True,
        )
        if retry_after is not None:
            return self._address_limited(retry_after)
        header = self.challenge(
            dpop=refusal.dpop, error=refusal.error, description=refusal.description
        )
        # One problem type for every 401; the RFC 6750 / RFC 9449 error code is in the
        # challenge, where OAuth clients look for it.
        return Unauthorized(
            refusal.description[:1].upper() + refusal.description[1:] + ".",
            headers={"WWW-Authenticate": header},
        )

    def _address_limited(self, retry_after: int) -> ProblemError:
        """Failures from this address are past the threshold: 429 instead of 401."""
        self.service.count_rate_limited("anonymous", "address")
        return TooManyRequests(
            "Too many failed requests from this address; retry after the given time.",
            headers={"Retry-After": str(retry_after)},
        )

    def _authenticate(self, required_scopes: tuple[str, ...]) -> Actor:
        if "access_token" in request.args or (
            request.mimetype == FORM and "access_token" in request.form
        ):
            raise _Refusal(
                "invalid_request",
                "access tokens are accepted only in the Authorization header",
                dpop=False,
            )
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            retry_after = self.service.refusals.record(
                endpoint=request.url_rule.rule if request.url_rule else request.path,
                error="no_token",
                description=None,
                claimed_client=None,
                address=client_address(),
                failed_authentication=True,
            )
            if retry_after is not None:
                raise self._address_limited(retry_after)
            # RFC 6750 §3.1: no error code when the request had no authentication at all.
            header = f"{self.challenge(dpop=False)}, {self.challenge(dpop=True)}"
            raise Unauthorized("An access token is required.", headers={"WWW-Authenticate": header})
        scheme, _, token = authorization.partition(" ")
        scheme = scheme.lower()
        token = token.strip()
        if scheme not in {"bearer", "dpop"} or not token:
            raise _Refusal("invalid_token", "use the Bearer or DPoP scheme", dpop=False)
        presented_dpop = scheme == "dpop"
        now = self.service.now()
        access = self.verified.get(token, now)
        if access is None:
            try:
                access = rfc9068.decode(
                    token, self.service.signing_keys, issuer=self.service.issuer, now=now
                )
            except rfc9068.InvalidAccessToken as exc:
                raise _Refusal("invalid_token", str(exc), dpop=presented_dpop) from None
            self.verified.put(access, now)
        bound = access.jkt is not None
        # The DPoP proof's signature is checked before the transaction (CPU only; SQLite's
        # write lock is not held for it); its failure is raised in the order below.
        proof = self._verify_proof(access, now) if bound and presented_dpop else None
        # One short write transaction: revocation and client standing (one statement),
        # the proof's jti, the client's rate-limit bucket. A refusal rolls it back (no
        # token spent, no jti kept); a 429 commits the bucket like a grant.
        with self.service.db.write_connection() as connection:
            revoked, client = store.token_standing(connection, access.jti, access.client_id)
            if revoked:
                raise _Refusal(
                    "invalid_token",
                    "the access token was revoked",
                    dpop=bound,
                    client=access.client_id,
                )
            if client is None or not client.active or client.organisation != access.organisation:
                raise _Refusal(
                    "invalid_token",
                    "the client of this access token is disabled",
                    dpop=bound,
                    client=access.client_id,
                )
            if bound and not presented_dpop:
                raise _Refusal(
                    "invalid_token",
                    "a DPoP-bound access token must be sent with the DPoP scheme and a proof",
                    dpop=True,
                    client=access.client_id,
                )
            if presented_dpop and not bound:
                raise _Refusal(
                    "invalid_token",
                    "this access token is not DPoP-bound; use the Bearer scheme",
                    dpop=True,
                    client=access.client_id,
                )
            if proof is not None:
                self._consume_proof(connection, access, proof)
            limited = self.service.limits.spend(connection, V1, access.client_id)
        if limited is not None:
            self.service.limits.refused(limited)
            raise TooManyRequests(
                "This client has sent too many requests; retry after the given time.",
                headers={"Retry-After": str(limited.retry_after)},
            )
        missing = [s for s in required_scopes if s not in access.scopes]
        if missing:
            description = f"this operation needs scope {' '.join(required_scopes)}"
            self.service.refusals.record(
                endpoint=request.url_rule.rule if request.url_rule else request.path,
                error="insufficient_scope",
                description=description,
                claimed_client=access.client_id,
                address=client_address(),
            )
            challenge = self.challenge(
                dpop=bound, error="insufficient_scope", description=description
            )
            challenge += f', scope="{" ".join(required_scopes)}"'
            raise Forbidden(description + ".", headers={"WWW-Authenticate": challenge})
        return Actor(
            type="client",
            id=access.client_id,
            organisation=client.organisation,
            organisation_kind=client.organisation_kind,
            scopes=access.scopes,
        )

    def _verify_proof(self, access: rfc9068.AccessToken, now: int) -> Proof | _Refusal:
        """The request's DPoP proof for `access`, checked (not yet consumed), or the
        refusal to raise once the token's own checks have passed."""
        config = self.service.config
        proofs = request.headers.getlist("DPoP")
        if len(proofs) != 1:
            return _Refusal(
                "invalid_dpop_proof",
                "send exactly one DPoP proof header",
                dpop=True,
                client=access.client_id,
            )
        try:
            proof = verify_proof(
                proofs[0],
                method=request.method,
                uri=self.service.issuer + request.path,
                now=now,
                max_age=config.dpop_max_age,
                skew=config.clock_skew,
                algorithms=config.client_algorithms,
                access_token=access.token,
            )
        except InvalidProof as exc:
            return _Refusal("invalid_dpop_proof", str(exc), dpop=True, client=access.client_id)
        if proof.jkt != access.jkt:
            return _Refusal(
                "invalid_dpop_proof",
                "the DPoP proof is signed by another key than the token is bound to",
                dpop=True,
                client=access.client_id,
            )
        return proof

    def _consume_proof(
        self, connection: Connection, access: rfc9068.AccessToken, proof: Proof | _Refusal
    ) -> None:
        """Raise the proof's refusal, or record its jti in the caller's transaction
        (refused when it was used before, at any process)."""
        if isinstance(proof, _Refusal):
            raise proof
        config = self.service.config
        expires = proof.iat + config.dpop_max_age + config.clock_skew
        digest = store.jti_digest("dpop", proof.jkt, proof.jti)
        if not store.consume_jti(connection, digest, expires_at=expires, now=self.service.now()):
            raise _Refusal(
                "invalid_dpop_proof",
                "the DPoP proof was used before",
                dpop=True,
                client=access.client_id,
            )
