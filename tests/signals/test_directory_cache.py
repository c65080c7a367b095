"""The per-process cache of the directory's encryption keys (gateway/signals/directory.py):
a key added elsewhere is found on its first use, a change made in this process is seen
at once, and one made elsewhere within the cache's lifetime."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from sqlalchemy import insert, update

from gateway.crypto import generate_p256_jwk
from gateway.db import Database
from gateway.partners.models import Organisation
from gateway.partners.registry import add_organisation, disable_organisation
from gateway.signals.directory import DirectoryCache
from tests.oauth.support import ADMIN


def _public_key() -> dict[str, Any]:
    _, public = generate_p256_jwk(use="enc", alg="ECDH-ES+A256KW")
    return public


def _db(app: Flask) -> Database:
    database: Database = app.extensions["ketenpoort"].db
    return database


def test_a_key_added_by_another_process_is_found_on_first_use(app: Flask) -> None:
    cache = DirectoryCache(_db(app), ttl=3600)
    before = cache.current()
    key = _public_key()
    # Straight into the table, as another gateway process or the CLI would: no signal
    # to this process's cache.
    with _db(app).transaction() as session:
        session.execute(
            insert(Organisation).values(
                id="zorg-elders",
                name="Zorg elders",
                kind="care",
                encryption_jwks={"keys": [key]},
                status="active",
                created_at=int(time.time()),
            )
        )
    assert key["kid"] not in before
    view = cache.view()
    assert view.get(key["kid"]) == ("zorg-elders", key)
    assert view.get("no-such-kid") is None


def test_a_change_in_this_process_is_seen_at_once(app: Flask) -> None:
    key = _public_key()
    with _db(app).transaction() as session:
        add_organisation(
            session,
            org_id="politie-x",
            name="Politie X",
            kind="police",
            encryption_keys=[key],
            actor=ADMIN,
        )
    cache = DirectoryCache(_db(app), ttl=3600)
    assert cache.view().get(key["kid"]) is not None
    with _db(app).transaction() as session:
        disable_organisation(session, "politie-x", actor=ADMIN)
    assert cache.view().get(key["kid"]) is None


def test_a_removal_by_another_process_is_seen_when_the_lifetime_ends(app: Flask) -> None:
    key = _public_key()
    with _db(app).transaction() as session:
        add_organisation(
            session,
            org_id="school-x",
            name="School X",
            kind="education",
            encryption_keys=[key],
            actor=ADMIN,
        )
    cache = DirectoryCache(_db(app), ttl=0.2)
    assert cache.view().get(key["kid"]) is not None
    with _db(app).transaction() as session:  # another process disables it: no signal here
        session.execute(
            update(Organisation).where(Organisation.id == "school-x").values(status="disabled")
        )
    time.sleep(0.25)
    assert cache.view().get(key["kid"]) is None
