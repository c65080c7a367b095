"""Retention: expired signals lose payload and pseudonyms, and each expiry is audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.cli import main
from gateway.matching.processor import process_outbox
from gateway.signals.expiry import expire_signals
from gateway.signals.models import SignalPseudonymRow, SignalRow
from tests.audit.test_verify import cli_env
from tests.conftest import MELDPUNT_SCOPES
from tests.signals.test_api import body


def test_signals_past_retention_expire_and_are_audited(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    police, care = token_headers("police"), token_headers("care")
    meldpunt = token_headers("meldpunt", MELDPUNT_SCOPES)
    a = client.post("/v1/signals", json=body(client, police), headers=police).get_json()
    client.post("/v1/signals", json=body(client, care, "JH-1", "concern"), headers=care)
    svc = app.extensions["ketenpoort"]
    engine = svc.policy.engine
    process_outbox(svc.db)  # the background job matched them long before they expire
    assert expire_signals(svc.db, engine) == 0  # nothing is due yet
    later = datetime.now(UTC) + timedelta(days=731)
    assert expire_signals(svc.db, engine, now=later) == 2
    with svc.db.transaction(write=False) as session:
        rows = session.execute(select(SignalRow)).scalars().all()
        assert {r.status for r in rows} == {"expired"}
        assert all(r.payload is None for r in rows)
        assert session.execute(select(SignalPseudonymRow)).scalars().all() == []
        entries = [
            json.loads(r.data)
            for r in session.execute(
                select(AuditEntryRow).where(AuditEntryRow.action == "signal.expire")
            ).scalars()
        ]
    assert {e["resource"]["id"] for e in entries} >= {a["id"]}
    assert all(e["actor"]["type"] == "system" and len(e["subjects"]) == 2 for e in entries)
    types = [
        n["type"] for n in client.get("/v1/notifications", headers=meldpunt).get_json()["items"]
    ]
    assert types.count("signal.expired") == 2
    assert client.get(f"/v1/signals/{a['id']}", headers=police).get_json()["status"] == "expired"


def test_cli_expire_runs_with_nothing_due(app: Flask) -> None:
    result = CliRunner().invoke(
        main, ["signals", "expire", "--json"], env=cli_env(app.extensions["ketenpoort"].settings)
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{") :]) == {"expired": 0}
