"""The composition root builds every service once, typed, before the first request."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask

from gateway.app import create_app
from gateway.config import Settings
from gateway.services import EXTENSION, Services, close_app, services_of


def test_one_typed_container_and_no_other_extension_keys(app: Flask) -> None:
    found = services_of(app)
    assert isinstance(found, Services)
    assert [k for k in app.extensions if k.startswith("ketenpoort")] == [EXTENSION]
    # Every field is a named type (no catch-all registry); only the OpenAPI cache holds JSON.
    untyped = [
        f.name
        for f in dataclasses.fields(Services)
        if "Any" in str(f.type) and f.name != "openapi_documents"
    ]
    assert untyped == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.policy = found.policy  # type: ignore[misc]


def test_requests_use_the_services_built_at_start(app: Flask) -> None:
    found = services_of(app)
    pseudonymiser = found.pseudonyms.get()
    app.test_client().get("/readyz")
    assert services_of(app).pseudonyms.get() is pseudonymiser
    assert services_of(app).directory is found.directory


def test_background_jobs_follow_the_switch(settings: Settings, initialised: object) -> None:
    assert services_of(create_app(settings=settings)).jobs == ()
    app = create_app(settings=dataclasses.replace(settings, background_jobs=True))
    try:
        names = sorted(job.name for job in services_of(app).jobs)
        assert names == ["alerts", "audit-sequencer", "matching-outbox", "retention"]
    finally:
        close_app(app)
