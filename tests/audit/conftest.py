"""Fixtures for the audit tests: a database, the checkpoint signer, and tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from gateway.actors import Actor
from gateway.audit import AuditEvent, SubjectRef, record_event
from gateway.audit.models import AuditCheckpointRow, AuditEntryRow, AuditNodeRow, AuditSubjectRow
from gateway.audit.sequencer import CheckpointSigner, sequence_pending, signer_from
from gateway.config import Settings
from gateway.db import Database
from gateway.keys import KeyStore, load_master_key

POLICE = Actor(type="client", id="police-bvh", organisation="police", scopes=frozenset())
CARE = Actor(type="client", id="care-portal", organisation="care", scopes=frozenset())
OFFICER = Actor(
    type="user", id="u-fg-1", organisation="meldpunt", role="privacy-officer", scopes=frozenset()
)


def empty_the_log(db: Database) -> None:
    """Start a test from an empty log: `init` and app start already wrote entries
    (meldpunt registration, policy activation) that would shift every index."""
    with db.transaction() as session:
        for model in (AuditSubjectRow, AuditNodeRow, AuditCheckpointRow, AuditEntryRow):
            session.execute(delete(model))


@pytest.fixture
def database(settings: Settings, initialised: object) -> Iterator[Database]:
    db = Database(settings.database_url)
    empty_the_log(db)
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


@pytest.fixture
def token_headers(token_headers: Callable[..., dict[str, str]]) -> Callable[..., dict[str, str]]:
    """The real `token_headers`, one token per (org, scopes): a test that asks twice, or
    after `logged` warmed it up, adds no registration or issuance entries to the log."""
    cache: dict[tuple[Any, ...], dict[str, str]] = {}

    def get(*args: Any, **kwargs: Any) -> dict[str, str]:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = token_headers(*args, **kwargs)
        return cache[key]

    return get


#: The tokens the API tests use, fetched before their log is emptied.
WARM_TOKENS: tuple[tuple[str, ...], ...] = (
    (),
    ("police",),
    ("care",),
    ("education",),
    ("meldpunt", "audit:read"),
    ("meldpunt", "audit:read cases:write"),
)
