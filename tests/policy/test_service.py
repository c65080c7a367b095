"""Loading at start: activation is audited once per new digest, versions stay retrievable,
a broken policy stops the start, decisions are audited with rule and digest."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response
from sqlalchemy import select

from gateway.actors import Actor
from gateway.api.openapi import operation
from gateway.api.validation import json_response
from gateway.app import create_app
from gateway.audit import AuditEvent, record_event
from gateway.audit.models import AuditEntryRow
from gateway.config import Settings
from gateway.db import Database
from gateway.migrate import upgrade_to_head
from gateway.policy import Context, PolicyError, Resource
from gateway.policy.active import list_versions, version_by_digest
from gateway.policy.loader import load_policy
from gateway.policy.service import authorize, decide_and_record, policy_service
from gateway.security import current_actor
from gateway.services import close_app, db_session
from tests.test_http_conventions import assert_problem

COORDINATOR = Actor(type="user", id="anna", organisation="meldpunt", role="coordinator")


def entries(settings: Settings, action: str | None = None) -> list[dict[str, Any]]:
    database = Database(settings.database_url)
    try:
        with database.transaction(write=False) as session:
            rows = session.execute(select(AuditEntryRow).order_by(AuditEntryRow.id)).scalars()
            found = [json.loads(row.data) for row in rows]
    finally:
        database.dispose()
    return [e for e in found if action is None or e["action"] == action]


def build(settings: Settings) -> Flask:
    app = create_app(settings=settings)
    close_app(app)
    return app


def variant(policy_text: str, tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"policy-{version}.yaml"
    path.write_text(policy_text.replace('version: "2026.1"', f'version: "{version}"'), "utf-8")
    return path


def test_start_records_activation_once_per_digest(
    settings: Settings, initialised: object, policy_text: str, tmp_path: Path
) -> None:
    first = load_policy(settings.policy)
    build(settings)
    build(settings)  # same policy again: nothing new
    [activated] = entries(settings, "policy.activated")
    assert activated["policy"] == {"rule": None, "digest": first.digest}
    assert activated["actor"] == {"type": "system", "id": "ketenpoort"}
    assert activated["detail"] == {
        "id": "twente-mensenhandel",
        "version": "2026.1",
        "previousDigest": None,
    }

    second_path = variant(policy_text, tmp_path, "2026.2")
    second = load_policy(second_path)
    build(replace(settings, policy=second_path))
    build(replace(settings, policy=settings.policy))  # back to the first one: activated again
    activations = entries(settings, "policy.activated")
    assert [a["policy"]["digest"] for a in activations] == [
        first.digest,
        second.digest,
        first.digest,
    ]
    assert activations[1]["detail"]["previousDigest"] == first.digest
    assert activations[2]["detail"]["previousDigest"] == second.digest

    database = Database(settings.database_url)
    with database.transaction(write=False) as session:
        stored = version_by_digest(session, second.digest)
        assert stored is not None and stored.version == "2026.2"
        assert stored.document.encode() == second.canonical
        assert [v.digest for v in list_versions(session)] == [first.digest, second.digest]
        assert version_by_digest(session, "0" * 64) is None
    database.dispose()


def test_broken_policy_stops_the_start(
    settings: Settings, initialised: object, policy_text: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        policy_text.replace("linkage_keys: [bsn, name_dob,", "linkage_keys: [bsn, iban,", 1)
    )
    with pytest.raises(PolicyError) as caught:
        create_app(settings=replace(settings, policy=broken))
    line = 1 + next(
        i
        for i, text in enumerate(policy_text.splitlines())
        if text.startswith("    linkage_keys: [bsn, name_dob,")
    )
    assert str(caught.value).startswith(
        f"invalid policy {broken}, line {line}: field categories.possible-victim.linkage_keys[1]:"
    )
    assert entries(settings, "policy.activated") == []


def test_missing_policy_file_stops_the_start(settings: Settings, initialised: object) -> None:
    with pytest.raises(PolicyError, match="file not found"):
        create_app(settings=replace(settings, policy=Path("/nonexistent/policy.yaml")))


def test_readiness_waits_for_the_activation(
    settings: Settings, initialised: object, tmp_path: Path
) -> None:
    """An app started before `ketenpoort init` is not ready until the activation is recorded."""
    fresh = replace(settings, database_url=f"sqlite:///{tmp_path / 'later.db'}")
    app = create_app(settings=fresh)
    client = app.test_client()
    response = client.get("/readyz")
    assert_problem(response, 503, "service-unavailable")
    assert "policy: activation not recorded" in response.get_json()["detail"]
    upgrade_to_head(app.extensions["ketenpoort"].db.engine)
    assert client.get("/readyz").status_code == 200
    assert [e["action"] for e in entries(fresh)] == ["policy.activated"]
    close_app(app)


def test_the_service_is_registered(app: Flask) -> None:
    with app.app_context():
        service = policy_service()
        assert service.activated
        assert service.digest == load_policy(app.extensions["ketenpoort"].settings.policy).digest
    assert "policy" in app.extensions["ketenpoort"].readiness
    assert app.test_client().get("/readyz").status_code == 200


def test_decide_and_record_audits_a_deny_as_its_own_entry(app: Flask, settings: Settings) -> None:
    resource = Resource(
        type="signal", id="sig-1", category="possible-victim", organisation="police-1"
    )
    with app.app_context():
        database = app.extensions["ketenpoort"].db
        with database.transaction() as session:
            denied = decide_and_record(session, COORDINATOR, "payload.read", resource)
            allowed = decide_and_record(
                session, COORDINATOR, "payload.read", resource, Context(purpose="case-assessment")
            )
            # The caller's own entry carries the allow.
            record_event(
                session,
                AuditEvent(
                    action="payload.read",
                    outcome="success",
                    actor=COORDINATOR,
                    resource_type="signal",
                    resource_id="sig-1",
                    **allowed.audit_fields(),
                ),
            )
    assert not denied.allowed and allowed.allowed
    deny_entry, allow_entry = entries(settings, "payload.read")
    assert deny_entry["outcome"] == "denied"
    assert deny_entry["policy"] == {"rule": "deny:purpose-required", "digest": denied.digest}
    assert deny_entry["detail"]["reason"] == "payload.read requires a purpose"
    assert deny_entry["resource"] == {"type": "signal", "id": "sig-1"}
    activity = deny_entry["ldv"]["dpl.core.processing_activity_id"]
    assert activity.endswith("signalen-mogelijke-slachtoffers")
    assert allow_entry["outcome"] == "success"
    assert allow_entry["policy"] == {"rule": "coordinator-reads-payload", "digest": allowed.digest}
    assert allow_entry["purpose"] == "case-assessment"


def test_unknown_action_denial_does_not_echo_the_action(app: Flask, settings: Settings) -> None:
    with app.app_context(), app.extensions["ketenpoort"].db.transaction() as session:
        decide_and_record(session, COORDINATOR, "999999990", Resource(type="signal"))
    [entry] = entries(settings, "policy.deny")
    assert "999999990" not in json.dumps(entry)


def test_authorize_in_a_view_commits_only_the_denial(
    app: Flask, settings: Settings, token_headers: Any
) -> None:
    @app.post("/v1/test-payload-reads")
    @operation(operation_id="testPayloadRead", summary="t", scopes=())
    def read_payload() -> Response:
        session = db_session()
        record_event(
            session, AuditEvent(action="test.side-effect", outcome="success", actor=current_actor())
        )
        authorize(
            session,
            current_actor(),
            "payload.read",
            Resource(type="signal", category="concern", organisation="police"),
        )
        return json_response({"read": True})

    response = app.test_client().post("/v1/test-payload-reads", headers=token_headers("police"))
    assert_problem(response, 403, "policy-denied")
    assert "deny:no-matching-rule" in response.get_json()["detail"]
    assert [
        (e["action"], e["outcome"])
        for e in entries(settings)
        if e["action"]
        not in {"policy.activated", "partner.register", "client.register", "token.issue"}
    ] == [("payload.read", "denied")]
