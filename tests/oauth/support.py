"""Partner-side helpers for tests: keys, client assertions and DPoP proofs.

Built with joserfc by default and with jwcrypto on request (`library="jwcrypto"`), so
the server is shown to accept tokens made by a second, independent JOSE implementation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey, import_key
from jwcrypto import jwk as jwc_jwk
from jwcrypto import jws as jwc_jws

from gateway.actors import Actor
from gateway.partners.registry import KINDS, add_client, add_organisation, get_organisation

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ADMIN = Actor(type="user", id="cli:test", role="admin")
DEFAULT_SCOPES = "signals:write signals:read notifications:read directory:read"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key(alg: str = "ES256") -> dict[str, Any]:
    """A private JWK for `alg`, with kid and use: sig."""
    key = (
        ECKey.generate_key("P-256", private=True)
        if alg == "ES256"
        else RSAKey.generate_key(2048, private=True)
    )
    return {**key.as_dict(private=True), "kid": key.thumbprint(), "use": "sig", "alg": alg}


def public_of(private: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in private.items() if k not in {"d", "p", "q", "dp", "dq", "qi"}}


def enc_key() -> tuple[dict[str, Any], dict[str, Any]]:
    key = ECKey.generate_key("P-256", private=True)
    extra = {"kid": key.thumbprint(), "use": "enc", "alg": "ECDH-ES+A256KW"}
    return {**key.as_dict(private=True), **extra}, {**key.as_dict(private=False), **extra}


def sign(
    header: dict[str, Any],
    claims: dict[str, Any],
    private: dict[str, Any],
    library: str = "joserfc",
) -> str:
    if library == "jwcrypto":
        token = jwc_jws.JWS(json.dumps(claims).encode())
        token.add_signature(jwc_jwk.JWK(**private), alg=header["alg"], protected=json.dumps(header))
        return str(token.serialize(compact=True))
    payload = json.dumps(claims).encode()
    return jws.serialize_compact(header, payload, import_key(private), algorithms=[header["alg"]])


def thumbprint(public: dict[str, Any]) -> str:
    if public["kty"] == "EC":
        members = {k: public[k] for k in ("crv", "kty", "x", "y")}
    else:
        members = {k: public[k] for k in ("e", "kty", "n")}
    raw = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(raw).digest())


@dataclass
class PartnerClient:
    """A registered client and its private key: builds what a partner system sends."""

    client_id: str
    organisation: str
    private_jwk: dict[str, Any]
    issuer: str
    dpop_jwk: dict[str, Any] = field(default_factory=lambda: new_key("ES256"))

    @property
    def alg(self) -> str:
        return str(self.private_jwk["alg"])

    def assertion(
        self,
        *,
        aud: Any = None,
        lifetime: int = 60,
        iat: int | None = None,
        jti: str | None = None,
        header: dict[str, Any] | None = None,
        library: str = "joserfc",
        key: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time()) if iat is None else iat
        body = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.issuer if aud is None else aud,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti or secrets.token_urlsafe(24),
            **claims,
        }
        signing = key or self.private_jwk
        head = header or {"alg": signing["alg"], "kid": signing["kid"], "typ": "JWT"}
        return sign(head, body, signing, library)

    def form(self, assertion: str | None = None, **extra: str) -> dict[str, str]:
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(),
        }
        data.update(extra)
        return data

    def dpop_proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        iat: int | None = None,
        jti: str | None = None,
        key: dict[str, Any] | None = None,
        library: str = "joserfc",
        typ: str = "dpop+jwt",
    ) -> str:
        private = key or self.dpop_jwk
        header = {
            "typ": typ,
            "alg": private["alg"],
            "jwk": public_of({k: v for k, v in private.items() if k not in {"kid", "use", "alg"}}),
        }
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
        }
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode()).digest())
        return sign(header, claims, private, library)

    def request_token(
        self,
        client: FlaskClient,
        *,
        scope: str | None = None,
        dpop: bool = False,
        library: str = "joserfc",
    ) -> Any:
        extra = {"scope": scope} if scope else {}
        headers = {}
        if dpop:
            headers["DPoP"] = self.dpop_proof("POST", f"{self.issuer}/oauth/token", library=library)
        return client.post(
            "/oauth/token",
            data=self.form(self.assertion(library=library), **extra),
            headers=headers,
        )


class TokenHeaders(dict[str, str]):
    """`{"Authorization": …}`; for DPoP tokens `.for_request()` adds a fresh proof."""

    def __init__(self, partner: PartnerClient, access_token: str, scheme: str) -> None:
        super().__init__({"Authorization": f"{scheme} {access_token}"})
        self.partner = partner
        self.access_token = access_token
        self.scheme = scheme

    def for_request(self, method: str, path: str) -> dict[str, str]:
        if self.scheme != "DPoP":
            return dict(self)
        proof = self.partner.dpop_proof(
            method, f"{self.partner.issuer}{path}", access_token=self.access_token
        )
        return {**self, "DPoP": proof}


def register_partner(
    app: Flask,
    org: str = "police",
    scopes: str = DEFAULT_SCOPES,
    *,
    kind: str | None = None,
    require_dpop: bool = False,
    alg: str = "ES256",
) -> PartnerClient:
    """Register `org` if new and a client of it; returns the client with its key."""
    services = app.extensions["ketenpoort"]
    private = new_key(alg)
    with services.db.transaction() as session:
        if get_organisation(session, org) is None:
            _, enc_public = enc_key()
            add_organisation(
                session,
                org_id=org,
                name=org.capitalize(),
                kind=kind or (org if org in KINDS else "care"),
                encryption_keys=[enc_public],
                actor=ADMIN,
            )
        client = add_client(
            session,
            org_id=org,
            signing_keys=[public_of(private)],
            scopes=tuple(scopes.split()),
            require_dpop=require_dpop,
            actor=ADMIN,
        )
        client_id = client.client_id
    return PartnerClient(client_id, org, private, services.settings.issuer)
