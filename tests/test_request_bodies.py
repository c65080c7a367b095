"""Body handling shared by every write endpoint: 400 with every error, 413, 415."""

from __future__ import annotations

import io
from typing import Literal

import pytest
from flask import Flask, Response
from pydantic import Field

from gateway.api.models import ApiModel
from gateway.api.openapi import operation
from gateway.api.validation import json_response, parse_body, parse_query
from tests.test_http_conventions import assert_problem


class Inner(ApiModel):
    family_name: str = Field(min_length=1)
    date_of_birth: str | None = None


class Example(ApiModel):
    reference: str = Field(min_length=1, max_length=64)
    category: Literal["possible-victim", "concern"]
    subject: Inner


class Paging(ApiModel):
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = None


@pytest.fixture
def echo_app(app: Flask) -> Flask:
    @app.post("/v1/examples")
    @operation(operation_id="createExample", summary="test", request=Example, status=201)
    def create() -> Response:
        return json_response(parse_body(Example), status=201)

    @app.get("/v1/examples")
    @operation(operation_id="listExamples", summary="test", query=Paging)
    def listing() -> Response:
        return json_response(parse_query(Paging))

    return app


def test_valid_body_round_trips_in_camel_case(echo_app: Flask) -> None:
    body = {"reference": "R-1", "category": "concern", "subject": {"familyName": "Jansen"}}
    response = echo_app.test_client().post("/v1/examples", json=body)
    assert response.status_code == 201
    assert response.get_json() == body


def test_every_schema_error_is_listed_with_a_pointer(echo_app: Flask) -> None:
    body = {"reference": "", "category": "unknown", "subject": {"familyName": ""}, "extra": 1}
    response = echo_app.test_client().post("/v1/examples", json=body)
    problem = assert_problem(response, 400, "invalid-input")
    pointers = {e["pointer"] for e in problem["errors"]}
    assert pointers == {"/reference", "/category", "/subject/familyName", "/extra"}
    assert all(e["detail"] for e in problem["errors"])


def test_errors_never_echo_the_input(echo_app: Flask) -> None:
    body = {"reference": "x" * 65, "category": "concern", "subject": {"familyName": 123456782}}
    response = echo_app.test_client().post("/v1/examples", json=body)
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "123456782" not in text and "x" * 65 not in text


@pytest.mark.parametrize("raw", [b"{", b"not json", b"\xff\xfe{}", b'{"a": 1,}', b""])
def test_malformed_json_is_400(echo_app: Flask, raw: bytes) -> None:
    response = echo_app.test_client().post(
        "/v1/examples", data=raw, content_type="application/json"
    )
    assert_problem(response, 400, "malformed-json")


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null"])
def test_non_object_json_is_400(echo_app: Flask, raw: bytes) -> None:
    response = echo_app.test_client().post(
        "/v1/examples", data=raw, content_type="application/json"
    )
    assert_problem(response, 400, "invalid-input")


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_missing_or_wrong_content_type_is_415(echo_app: Flask, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = echo_app.test_client().post("/v1/examples", data=b"{}", headers=headers)
    assert_problem(response, 415, "unsupported-media-type")


def test_body_over_256_kib_is_413(echo_app: Flask) -> None:
    big = b'{"reference": "' + b"a" * (256 * 1024) + b'"}'
    response = echo_app.test_client().post(
        "/v1/examples", data=big, content_type="application/json"
    )
    assert_problem(response, 413, "payload-too-large")


def test_chunked_body_over_limit_is_413(echo_app: Flask) -> None:
    response = echo_app.test_client().post(
        "/v1/examples",
        input_stream=io.BytesIO(b"a" * (300 * 1024)),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_query_errors_name_the_parameter(echo_app: Flask) -> None:
    client = echo_app.test_client()
    assert client.get("/v1/examples?limit=10").get_json() == {"limit": 10}
    problem = assert_problem(client.get("/v1/examples?limit=0&colour=red"), 400, "invalid-input")
    assert {e["parameter"] for e in problem["errors"]} == {"limit", "colour"}
    dup = assert_problem(client.get("/v1/examples?limit=1&limit=2"), 400, "invalid-input")
    assert dup["errors"][0]["parameter"] == "limit"
