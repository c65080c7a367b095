"""Weakness 11: the audit endpoints go through the policy engine and require a scope.

The outside attack read and exported its organisation's log with a token narrowed to
`directory:read`, and the policy gives `audit.export` to the privacy officer only. Now:
listing and searching need `audit:read` or `signals:read` and the policy's `audit.read`
(the allowing rule decides whole log or own entries); exports need `audit:read` and the
policy's `audit.export`; checkpoint, key and proofs stay open to every valid token
(partners are witnesses). Every decision is an audit entry naming its rule.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.actors import Actor
from gateway.audit.access import AuditService
from gateway.audit.models import AuditEntryRow
from gateway.audit.queries import EntryFilter
from gateway.errors import Forbidden, PolicyDenied
from tests.audit.conftest import POLICE, write_events
from tests.test_http_conventions import assert_problem

PRIVACY_OFFICER = Actor(type="user", id="fg-dirk", organisation="meldpunt", role="privacy-officer")
COORDINATOR = Actor(type="user", id="coordinator-anna", organisation="meldpunt", role="coordinator")


def audit_entries(app: Flask, action: str) -> list[dict[str, Any]]:
    with app.extensions["ketenpoort"].db.session() as session:
        rows = session.execute(
            select(AuditEntryRow.data).where(AuditEntryRow.action == action)
        ).scalars()
        return [json.loads(r) for r in rows]


def service(app: Flask) -> AuditService:
    found: AuditService = app.extensions["ketenpoort"].audit
    return found


@pytest.fixture
def logged(app: Flask, token_headers: Any) -> None:
    """Entries by police and by care, sequenced."""
    db = app.extensions["ketenpoort"].db
    write_events(db, 3, POLICE)
    write_events(db, 2, Actor(type="client", id="care-portal", organisation="care"))
    service(app).catch_up()


def test_a_directory_read_token_reads_and_exports_nothing(
    app: Flask, client: FlaskClient, token_headers: Any, logged: None
) -> None:
    h = token_headers("police", "directory:read")
    body = assert_problem(client.get("/v1/audit/entries", headers=h), 403, "insufficient-scope")
    assert "signals:read" in body["detail"] and "audit:read" in body["detail"]
    assert (
        "insufficient_scope"
        in client.get("/v1/audit/entries", headers=h).headers["WWW-Authenticate"]
    )
    assert_problem(
        client.post("/v1/audit/entries/_search", json={}, headers=h), 403, "insufficient-scope"
    )
    assert_problem(client.get("/v1/audit/export", headers=h), 403, "insufficient-scope")
    refused = [e for e in audit_entries(app, "audit.read") if e["outcome"] == "denied"]
    assert len(refused) == 3
    assert all(e["detail"]["requiredScopes"] == ["audit:read", "signals:read"] for e in refused)
    assert all(e["actor"]["organisation"] == "police" for e in refused)
    # The contract: checkpoint, key and proofs stay open to every valid token.
    assert client.get("/v1/audit/checkpoint", headers=h).status_code == 200
    assert client.get("/v1/audit/key", headers=h).status_code == 200
    assert client.get("/v1/audit/proofs/consistency?first=1&second=2", headers=h).status_code == 200
    assert client.get("/v1/audit/proofs/inclusion?index=0&treeSize=2", headers=h).status_code == 200


def test_a_partner_reads_its_own_entries_with_signals_read_and_exports_nothing(
    app: Flask, client: FlaskClient, token_headers: Any, logged: None
) -> None:
    h = token_headers("police")  # the default partner scopes, with signals:read
    page = client.get("/v1/audit/entries?limit=1000", headers=h).get_json()
    assert page["entries"] and all(
        e["entry"]["actor"].get("organisation") == "police" for e in page["entries"]
    )
    (read,) = [
        e for e in audit_entries(app, "audit.read") if e["resource"]["type"] == "audit-entries"
    ]
    assert read["outcome"] == "success"
    assert read["policy"]["rule"] == "partner-reads-own-audit-entries"
    assert_problem(client.get("/v1/audit/export", headers=h), 403, "insufficient-scope")


def test_audit_read_outside_the_meldpunt_is_not_the_whole_log(app: Flask, logged: None) -> None:
    """`audit:read` alone once showed any organisation the whole log; the policy gives the
    whole log to the meldpunt's system only, and exports to nobody else. (The registry
    gives `audit:read` to meldpunt clients only; this is the layer behind it.)"""
    audit = service(app)
    both = Actor(
        type="client",
        id="police-x",
        organisation="police",
        organisation_kind="police",
        scopes=frozenset({"signals:read", "audit:read"}),
    )
    page = audit.entries(both, EntryFilter(), limit=1000)
    assert {json.loads(e.data)["actor"].get("organisation") for e in page.entries} == {"police"}
    with pytest.raises(PolicyDenied, match="deny:no-matching-rule"):
        audit.export(both, EntryFilter(), "jsonl")
    (denied,) = audit_entries(app, "audit.export")
    assert denied["outcome"] == "denied" and denied["policy"]["rule"] == "deny:no-matching-rule"
    assert denied["policy"]["digest"]
    only_audit = Actor(
        type="client",
        id="police-y",
        organisation="police",
        organisation_kind="police",
        scopes=frozenset({"audit:read"}),
    )
    with pytest.raises(PolicyDenied):
        audit.entries(only_audit, EntryFilter())


def test_the_meldpunt_system_reads_and_exports_the_whole_log(
    app: Flask, client: FlaskClient, token_headers: Any, logged: None
) -> None:
    h = token_headers("meldpunt", "audit:read")
    page = client.get("/v1/audit/entries?limit=1000", headers=h).get_json()
    assert {"police", "care"} <= {e["entry"]["actor"].get("organisation") for e in page["entries"]}
    export = client.get("/v1/audit/export?format=jsonl", headers=h)
    assert export.status_code == 200 and export.get_data(as_text=True).count("\n") >= 5
    reads = [
        e for e in audit_entries(app, "audit.read") if e["resource"]["type"] == "audit-entries"
    ]
    assert reads[-1]["policy"]["rule"] == "meldpunt-system-reads-audit-log"
    (exported,) = audit_entries(app, "audit.export")
    assert exported["outcome"] == "success"
    assert exported["policy"]["rule"] == "meldpunt-system-exports-audit-log"


def test_the_service_without_http(app: Flask, logged: None) -> None:
    """The privacy officer's workspace calls the same service: decided and audited."""
    audit = service(app)
    page = audit.entries(PRIVACY_OFFICER, EntryFilter(actor_organisation="care"), limit=10)
    assert len(page.entries) == 2 and page.next is None
    exported = audit.export(PRIVACY_OFFICER, EntryFilter(), "csv")
    assert "".join(exported.lines).startswith("index,leafHash")
    stopped = audit.export(PRIVACY_OFFICER, EntryFilter(), "jsonl")
    assert next(stopped.lines).startswith("{")
    stopped.lines.close()  # a caller that stops early ends the export's read transaction
    report = audit.verify(PRIVACY_OFFICER)
    assert report.ok and report.entries >= 5
    with pytest.raises(PolicyDenied, match="deny:separation-of-duties"):
        audit.export(COORDINATOR, EntryFilter(), "jsonl")
    with pytest.raises(Forbidden):
        audit.entries(Actor(type="client", id="x", organisation="police"), EntryFilter())
    with pytest.raises(PolicyDenied):
        audit.verify(
            Actor(
                type="client",
                id="p",
                organisation="police",
                organisation_kind="police",
                scopes=frozenset({"audit:read", "signals:read"}),
            )
        )
    rules = {
        (e["actor"]["id"], e["outcome"], (e["policy"] or {}).get("rule"))
        for e in audit_entries(app, "audit.read") + audit_entries(app, "audit.export")
    }
    assert ("fg-dirk", "success", "privacy-officer-reviews-log") in rules
    assert ("coordinator-anna", "denied", "deny:separation-of-duties") in rules
    assert ("p", "denied", "partner-reads-own-audit-entries") in rules
