"""`GET /v1/policy`: exactly the contract's shape, open to every valid token, audited."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.actors import Actor
from gateway.audit.models import AuditEntryRow
from gateway.policy.engine import PolicyEngine, Resource
from gateway.policy.loader import load_policy
from gateway.policy.views import PolicySummary
from tests.test_http_conventions import assert_problem

Headers = Callable[..., dict[str, str]]


def audit(app: Flask, action: str) -> list[dict[str, object]]:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        rows = session.execute(select(AuditEntryRow).where(AuditEntryRow.action == action))
        return [json.loads(row.data) for row in rows.scalars()]


def test_policy_has_exactly_the_contract_fields(
    app: Flask, client: FlaskClient, token_headers: Headers
) -> None:
    response = client.get("/v1/policy", headers=token_headers("police", "signals:write"))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    loaded = load_policy(app.extensions["ketenpoort"].settings.policy)
    assert set(body) == {"id", "version", "digest", "categories"}
    assert (body["id"], body["version"], body["digest"]) == (
        "twente-mensenhandel",
        "2026.1",
        loaded.digest,
    )
    assert set(body["categories"]) == {"possible-victim", "possible-perpetrator", "concern", "test"}
    for name, category in body["categories"].items():
        keys = {"retentionDays", "requiredRecipients", "processingActivity", "test"}
        assert set(category) == keys
        assert category["test"] is (name == "test")
        assert "meldpunt" in category["requiredRecipients"]
        assert 0 < category["retentionDays"] <= 730
        assert category["processingActivity"].startswith("https://register.enschede.nl/")
        assert category["processingActivity"] == loaded.policy.categories[name].processing_activity
    PolicySummary.model_validate(body)  # the documented schema


def test_any_scope_will_do_but_a_token_is_needed(
    client: FlaskClient, token_headers: Headers
) -> None:
    assert (
        client.get(
            "/v1/policy", headers=token_headers("school-1", "directory:read", kind="education")
        ).status_code
        == 200
    )
    assert_problem(client.get("/v1/policy"), 401, "invalid-token")
    assert_problem(
        client.get("/v1/policy", headers={"Authorization": "Bearer nope"}), 401, "invalid-token"
    )


def test_the_read_is_audited_with_rule_and_digest(
    app: Flask, client: FlaskClient, token_headers: Headers
) -> None:
    body = client.get("/v1/policy", headers=token_headers("care-1", kind="care")).get_json()
    [entry] = audit(app, "policy.read")
    assert entry["outcome"] == "success"
    assert entry["actor"]["type"] == "client"
    assert entry["actor"]["organisation"] == "care-1"
    assert entry["actor"]["id"].startswith("care-1")
    assert entry["policy"] == {
        "rule": "partner-reads-directory-and-policy",
        "digest": body["digest"],
    }


def test_an_organisation_kind_outside_the_covenant_is_denied(engine: PolicyEngine) -> None:
    """The registry refuses unknown kinds; should one slip through, the engine denies."""
    actor = Actor(type="client", id="x", organisation="bedrijf-x", organisation_kind="commercial")
    decision = engine.decide(actor, "policy.read", Resource(type="policy"))
    assert not decision.allowed
    assert decision.rule == "deny:unknown-organisation-kind"


def test_documented_in_openapi(client: FlaskClient) -> None:
    document = client.get("/v1/openapi.json").get_json()
    op = document["paths"]["/policy"]["get"]
    assert op["security"] == [{"oauth2": []}]
    schema = document["components"]["schemas"]["PolicySummary"]
    assert set(schema["properties"]) == {"id", "version", "digest", "categories"}
    assert set(schema["required"]) == {"id", "version", "digest", "categories"}
