"""Test data for signals: random 32-byte pseudonyms, never a real identifier."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.db import Database
from gateway.migrate import upgrade_to_head
from gateway.signals.service import NewSignal

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PAYLOAD = json.dumps({"protected": "eyJlbmMiOiJBMjU2R0NNIn0", "ciphertext": "x", "tag": "y"})
KINDS = {"police-oost": "police", "zorg-twente": "care", "roc-twente": "education"}
KINDS |= {"gemeente-enschede": "municipality", "gemeente-hengelo": "municipality"}


def element() -> bytes:
    return secrets.token_bytes(32)


def person(*, bsn: bool = True, name_dob: bool = True) -> dict[str, bytes]:
    """The pseudonyms of a random person."""
    found = {}
    if bsn:
        found["bsn"] = element()
    if name_dob:
        found["name_dob"] = element()
    return found


def new_signal(
    organisation: str,
    pseudonyms: dict[str, bytes],
    *,
    reference: str | None = None,
    category: str = "possible-victim",
    retention_days: int = 365,
    idempotency_key: str | None = None,
    body: bytes = b"{}",
) -> NewSignal:
    return NewSignal(
        organisation=organisation,
        organisation_kind=KINDS[organisation],
        reference=reference or f"REF-{secrets.token_hex(4)}",
        category=category,
        pseudonyms=pseudonyms,
        pseudonym_key_id="psk-1",
        payload=PAYLOAD,
        retention_days=retention_days,
        idempotency_key=idempotency_key,
        request_hash=hashlib.sha256(body).digest() if idempotency_key else None,
    )


def count(session: Session, model: type) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated database on each backend (SQLite; PostgreSQL when configured)."""
    db = Database(database_url)
    upgrade_to_head(db.engine)
    yield db
    db.dispose()
