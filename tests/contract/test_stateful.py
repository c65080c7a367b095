"""Stateful contract fuzzing: create -> get -> withdraw, linked (issue 17).

Schemathesis infers the links of the signal operations from the document (the `id` a
201 answers is the `{signal_id}` of GET and DELETE) and walks random sequences of them
with one police system's token. A generated body for POST /signals is made valid
(a real envelope for the policy's recipients, a real subject): random bytes never
decrypt, and a create that always fails would leave nothing to link to. Checks on every
step: no 5xx, status, content type, headers and body as documented, 4xx as
problem+json; and what the sequence implies: a created signal reads back (never 404) and
a withdrawn one says `withdrawn`. Bounded here; `make fuzz` runs it longer.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections import Counter
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings

from gateway.crypto.jwe import encrypt_for_recipients
from gateway.demo.people import people
from tests.contract.test_fuzz import _checks, _problem_json, fuzz_app, tokens  # noqa: F401

pytestmark = pytest.mark.isolated

EXAMPLES = int(os.environ.get("KETENPOORT_FUZZ_EXAMPLES", "0") or 0)
SIGNAL_OPERATIONS = ["createSignal", "getSignal", "withdrawSignal", "listSignals"]


def _recipient_keys(app: Flask, authorization: str) -> list[dict[str, Any]]:
    client = app.test_client()
    headers = {"Authorization": authorization}
    policy = client.get("/v1/policy", headers=headers).get_json()
    directory = client.get("/v1/directory", headers=headers).get_json()["organisations"]
    required = policy["categories"]["possible-victim"]["requiredRecipients"]
    by_id = {org["id"]: org for org in directory}
    return [key for org in required for key in by_id[org]["encryptionKeys"]["keys"]]


def test_signal_lifecycle_sequences_hold_to_the_document(
    fuzz_app: Flask,  # noqa: F811
    tokens: dict[str, str],  # noqa: F811
) -> None:
    authorization = tokens["police"]
    keys = _recipient_keys(fuzz_app, authorization)
    subjects = itertools.cycle(p.subject() for p in people(30))
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", fuzz_app).include(
        operation_id=SIGNAL_OPERATIONS
    )
    checks = _checks()  # after loading a schema: schemathesis registers its checks lazily
    seen: Counter[str] = Counter()  # over every scenario: did the links take?

    class Lifecycle(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.created: set[str] = set()
            self.withdrawn: set[str] = set()

        def before_call(self, case: Any) -> None:
            if case.method == "POST" and case.path == "/signals":
                case.body = {
                    "reference": f"SF-{uuid.uuid4().hex[:12]}",
                    "category": "possible-victim",
                    "subject": next(subjects),
                    "payload": encrypt_for_recipients(b'{"summary": "zorgen"}', keys),
                }

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"Authorization": authorization}}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            problem = _problem_json(response)
            assert problem is None, problem
            case.validate_response(response, checks=checks, headers=kwargs.get("headers"))
            signal_id = (case.path_parameters or {}).get("signal_id")
            if case.method == "POST" and response.status_code == 201:
                self.created.add(response.json()["id"])
                seen["created"] += 1
            elif signal_id in self.created:
                seen[f"linked {case.method}"] += 1
                assert response.status_code == 200, (case.method, response.status_code)
                body = response.json()
                assert body["id"] == signal_id
                if case.method == "DELETE":
                    self.withdrawn.add(signal_id)
                if signal_id in self.withdrawn:
                    assert body["status"] == "withdrawn", body

    Lifecycle.run(
        settings=settings(
            max_examples=EXAMPLES or 8,
            stateful_step_count=6,
            phases=[Phase.generate] if not EXAMPLES else list(Phase),
            derandomize=not EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert seen["created"] and seen["linked GET"] and seen["linked DELETE"], seen
