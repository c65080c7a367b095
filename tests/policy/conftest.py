"""Fixtures for the policy tests.

`token_headers` is TEMPORARY: replaced by the real OAuth fixture at merge. Until then it
registers a tiny validator mapping bearer strings to `Actor`s, with the same name and
signature as the OAuth helper's fixture, so the API tests need no change at merge.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask, request

from gateway.actors import Actor
from gateway.errors import Forbidden, Unauthorized
from gateway.policy.engine import PolicyEngine
from gateway.policy.loader import LoadedPolicy, load_policy
from tests.conftest import ROOT

TWENTE = ROOT / "policies" / "twente.yaml"
DEFAULT_SCOPES = "signals:write signals:read notifications:read directory:read"


@pytest.fixture(scope="session")
def twente() -> LoadedPolicy:
    return load_policy(TWENTE)


@pytest.fixture(scope="session")
def engine(twente: LoadedPolicy) -> PolicyEngine:
    return PolicyEngine(twente)


@pytest.fixture
def policy_text() -> str:
    return Path(TWENTE).read_text(encoding="utf-8")


class _TemporaryValidator:
    """TEMPORARY (replaced by the real OAuth fixture at merge): bearer string -> Actor."""

    def __init__(self) -> None:
        self.tokens: dict[str, Actor] = {}

    def authenticate(self, required_scopes: tuple[str, ...]) -> Actor:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        actor = self.tokens.get(token)
        if actor is None:
            raise Unauthorized(
                "Invalid access token.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        missing = set(required_scopes) - actor.scopes
        if missing:
            raise Forbidden("Insufficient scope.")
        return actor


@pytest.fixture
def token_headers(app: Flask) -> Callable[..., dict[str, str]]:
    """TEMPORARY: replaced by the real OAuth fixture at merge (same name and signature)."""
    validator = _TemporaryValidator()
    app.extensions["ketenpoort"].extra["token_validator"] = validator

    def make(
        org: str = "police",
        scopes: str = DEFAULT_SCOPES,
        *,
        kind: str | None = None,
        dpop: bool = False,
    ) -> dict[str, str]:
        if dpop:
            pytest.skip("DPoP tokens come with the real OAuth fixture")
        token = secrets.token_urlsafe(24)
        validator.tokens[token] = Actor(
            type="client",
            id=f"{org}-client",
            organisation=org,
            organisation_kind=kind or org,
            scopes=frozenset(scopes.split()),
        )
        return {"Authorization": f"Bearer {token}"}

    return make
