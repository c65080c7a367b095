"""Protection fails closed: scoped routes need a validator, unscoped /v1 routes refuse to start."""

from __future__ import annotations

import pytest
from flask import Flask, Response

from gateway.api.openapi import operation
from gateway.api.validation import json_response
from gateway.security import UnprotectedRouteError, check_every_route_is_protected
from tests.test_http_conventions import assert_problem


def test_scoped_route_without_validator_is_401(app: Flask) -> None:
    @app.get("/v1/secret-things")
    @operation(operation_id="secret", summary="t", scopes=("signals:read",))
    def secret() -> Response:
        return json_response({"leaked": True})

    response = app.test_client().get("/v1/secret-things")
    assert_problem(response, 401, "invalid-token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unprotected_v1_route_stops_the_start(app: Flask) -> None:
    @app.get("/v1/forgotten")
    @operation(operation_id="forgotten", summary="t")
    def forgotten() -> Response:
        return json_response({})

    with pytest.raises(UnprotectedRouteError, match="/v1/forgotten"):
        check_every_route_is_protected(app)


def test_public_route_is_allowed(app: Flask) -> None:
    check_every_route_is_protected(app)  # /v1/openapi.json is public=True
