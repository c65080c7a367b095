"""Weakness 5 (second half): reads never hold SQLite's write lock for their work, and a
flood of identical reads costs the log a handful of entries without losing who read what.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from gateway.audit.models import AuditEntryRow
from gateway.services import db_session


def _entries(app: Flask, action: str, actor_organisation: str) -> list[dict[str, Any]]:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        rows = session.execute(
            select(AuditEntryRow.data)
            .where(
                AuditEntryRow.action == action,
                AuditEntryRow.actor_organisation == actor_organisation,
            )
            .order_by(AuditEntryRow.id)
        ).scalars()
        return [json.loads(r) for r in rows]


def test_a_read_request_works_in_a_read_transaction(app: Flask) -> None:
    db = app.extensions["ketenpoort"].db
    with app.test_request_context("/v1/signals", method="GET"):
        db_session().execute(text("SELECT 1"))
        if db.is_sqlite:  # another writer gets the lock at once: the read holds none
            other = sqlite3.connect(db.engine.url.database, timeout=0)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.rollback()
            finally:
                other.close()
    with app.test_request_context("/v1/signals", method="POST"):
        assert db_session().info.get("ketenpoort.read_audit") is None


def test_identical_reads_are_summarised_not_lost(
    app: Flask, client: FlaskClient, police: dict[str, str]
) -> None:
    if time.time() % 60 > 50:  # the twelve reads fall in one minute (the summary's window)
        time.sleep(61 - time.time() % 60)
    for _ in range(12):
        assert client.get("/v1/notifications", headers=police).status_code == 200
    reads = _entries(app, "notification.read", "police")
    assert len(reads) == 2  # the first read, and the tenth with the count so far
    assert "identicalReads" not in reads[0]["detail"]
    assert reads[1]["detail"]["identicalReads"] == 10
    assert reads[0]["actor"] == reads[1]["actor"]  # who read what is kept
    # a different read is its own entry at once
    assert client.get("/v1/signals", headers=police).status_code == 200
    assert len(_entries(app, "signal.list", "police")) == 1
