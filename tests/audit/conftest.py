"""Fixtures for the audit tests: a database, the checkpoint signer, and tokens."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, request

from gateway.actors import Actor
from gateway.audit import AuditEvent, SubjectRef, record_event
from gateway.audit.sequencer import CheckpointSigner, sequence_pending, signer_from
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import Forbidden, Unauthorized
from gateway.keys import KeyStore, load_master_key

POLICE = Actor(type="client", id="police-bvh", organisation="police", scopes=frozenset())
CARE = Actor(type="client", id="care-portal", organisation="care", scopes=frozenset())
OFFICER = Actor(
    type="user", id="u-fg-1", organisation="meldpunt", role="privacy-officer", scopes=frozenset()
)


@pytest.fixture
def database(settings: Settings, initialised: object) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


@pytest.fixture
def keys(settings: Settings, initialised: object) -> KeyStore:
    return KeyStore(
        settings.keys_dir, load_master_key(settings.keys_dir, settings.master_key, create=False)
    )


@pytest.fixture
def signer(settings: Settings, keys: KeyStore) -> CheckpointSigner:
    return signer_from(keys, settings.issuer)


def write_events(
    db: Database,
    count: int,
    actor: Actor = POLICE,
    *,
    action: str = "signal.create",
    subject: str | None = None,
    **kwargs: Any,
) -> list[bytes]:
    """`count` entries, one transaction each (as actions write them); their leaf hashes."""
    leaves = []
    for _ in range(count):
        with db.transaction() as session:
            subjects = (SubjectRef(subject, "ketenpoort-pseudonym"),) if subject else ()
            receipt = record_event(
                session,
                AuditEvent(
                    action=action, outcome="success", actor=actor, subjects=subjects, **kwargs
                ),
            )
        leaves.append(receipt.leaf_hash)
    return leaves


@pytest.fixture
def sequence(database: Database, signer: CheckpointSigner) -> Callable[..., int]:
    def run(**kwargs: Any) -> int:
        return sequence_pending(database, signer, **kwargs)

    return run


# --- TEMPORARY: replaced by the real OAuth fixture at merge ------------------------------
# The OAuth helper builds `token_headers` returning headers with a real access token.
# Until the merge, this stand-in registers a validator mapping bearer strings to actors.
# The lead deletes this block at merge.


@pytest.fixture
def token_headers(app: Flask) -> Callable[..., dict[str, str]]:
    tokens: dict[str, Actor] = {}
    counter = itertools.count(1)

    class _StandInValidator:
        def authenticate(self, required_scopes: tuple[str, ...]) -> Actor:
            header = request.headers.get("Authorization", "")
            actor = (
                tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
            )
            if actor is None:
                raise Unauthorized(
                    "Missing or invalid access token.",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            if not set(required_scopes) <= actor.scopes:
                raise Forbidden("Insufficient scope.")
            return actor

    app.extensions["ketenpoort"].extra["token_validator"] = _StandInValidator()

    def make(
        org: str = "police",
        scopes: str = "signals:write signals:read notifications:read directory:read",
        *,
        kind: str | None = None,
        dpop: bool = False,
    ) -> dict[str, str]:
        token = secrets.token_urlsafe(24)
        tokens[token] = Actor(
            type="client",
            id=f"{org}-client-{next(counter)}",
            organisation=org,
            organisation_kind=kind or org,
            scopes=frozenset(scopes.split()),
        )
        return {"Authorization": f"Bearer {token}"}

    return make


# --- end of TEMPORARY block -----------------------------------------------------------------
