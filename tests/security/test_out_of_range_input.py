"""Out-of-range paging and index input answers 400, never 500 (issue 10 item 4, weakness 7).

The endpoints are found in the app's own OpenAPI document: every query parameter or
body field that is an integer (start, limit, index, treeSize, first, second, …) or a
cursor (`cursor`, `after`) gets 24-digit, negative, 4,301-digit and 2**63 values, and
crafted cursors: base64 of huge numbers, of non-numbers, overlong and non-base64 text.
A new paged or indexed endpoint is covered without touching this test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.api.paging import MAX_KEY, encode_cursor
from tests.test_http_conventions import assert_problem

CURSOR_NAMES = {"cursor", "after"}
HUGE = "9" * 24
ENORMOUS = "9" * 4301


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


BAD_INTEGERS = [
    HUGE,
    "-1",
    "-" + HUGE,
    ENORMOUS,
    str(2**63),
    "1e3",
    "0x10",
    "\uff11\uff12",
]  # fullwidth digits
BAD_CURSORS = [
    b64(f"k1:{HUGE}"),
    b64("k1:" + ENORMOUS),
    b64(f"k1:{2**63}"),
    b64("k1:-1"),
    b64(f"i{HUGE}"),  # the audit log's former cursor format, with a huge index
    b64("i" + ENORMOUS),
    b64("hello, world"),
    b64("k1:NaN"),
    "A" * 10_000,
    encode_cursor(1) * 4,
    "!!!not base64!!!",
    "azE6MQ==",  # padding is not ours
    "%00",
]


@dataclass(frozen=True)
class Target:
    method: str
    path: str
    name: str
    kind: str  # "integer" or "cursor"
    where: str  # "query" or "body"


def _is_integer(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "integer":
        return True
    return any(_is_integer(s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def targets(document: dict[str, Any]) -> Iterator[Target]:
    for path, item in document["paths"].items():
        if "{" in path:  # a resource path; its identifiers are not paging input
            continue
        for method, op in item.items():
            for param in op.get("parameters", []):
                if param.get("in") != "query":
                    continue
                name = param["name"]
                if name in CURSOR_NAMES:
                    yield Target(method, "/v1" + path, name, "cursor", "query")
                elif _is_integer(param.get("schema", {})):
                    yield Target(method, "/v1" + path, name, "integer", "query")
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            schema = _resolve(document, content["schema"])
            for name, prop in schema.get("properties", {}).items():
                if name in CURSOR_NAMES:
                    yield Target(method, "/v1" + path, name, "cursor", "body")
                elif _is_integer(_resolve(document, prop)):
                    yield Target(method, "/v1" + path, name, "integer", "body")


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    found: dict[str, Any] = client.get("/v1/openapi.json").get_json()
    return found


@pytest.fixture
def every_scope(document: dict[str, Any], token_headers: Any) -> dict[str, str]:
    """A meldpunt token with every scope any operation names, so none answers 403."""
    scheme = document["components"]["securitySchemes"]["oauth2"]
    scopes = sorted(set().union(*(f.get("scopes", {}) for f in scheme["flows"].values())))
    headers: dict[str, str] = token_headers("meldpunt", " ".join(scopes))
    return headers


def send(client: FlaskClient, target: Target, value: str, headers: dict[str, str]) -> Any:
    if target.where == "query":
        return client.open(
            target.path,
            method=target.method.upper(),
            query_string={target.name: value},
            headers=headers,
        )
    literal = value if target.kind == "integer" and _looks_numeric(value) else json.dumps(value)
    return client.open(
        target.path,
        method=target.method.upper(),
        data=f'{{"{target.name}": {literal}}}',
        headers={**headers, "Content-Type": "application/json"},
    )


def _looks_numeric(value: str) -> bool:
    return value.isascii() and value.lstrip("-").isdigit()


def test_the_document_lists_the_paged_and_indexed_endpoints(document: dict[str, Any]) -> None:
    found = {(t.path, t.name) for t in targets(document)}
    for expected in [
        ("/v1/signals", "cursor"),
        ("/v1/signals", "limit"),
        ("/v1/notifications", "after"),
        ("/v1/notifications", "limit"),
        ("/v1/matches", "cursor"),
        ("/v1/audit/entries", "start"),
        ("/v1/audit/entries", "cursor"),
        ("/v1/audit/entries", "limit"),
        ("/v1/audit/entries/_search", "start"),
        ("/v1/audit/entries/_search", "cursor"),
        ("/v1/audit/proofs/inclusion", "index"),
        ("/v1/audit/proofs/inclusion", "treeSize"),
        ("/v1/audit/proofs/consistency", "first"),
        ("/v1/audit/proofs/consistency", "second"),
    ]:
        assert expected in found


def test_out_of_range_integers_are_400(
    client: FlaskClient, document: dict[str, Any], every_scope: dict[str, str]
) -> None:
    checked = 0
    for target in targets(document):
        if target.kind != "integer":
            continue
        for value in BAD_INTEGERS:
            if target.where == "body" and not _looks_numeric(value):
                continue  # not a JSON number; the string forms are covered in the query
            response = send(client, target, value, every_scope)
            assert response.status_code == 400, (target, value[:30], response.get_data()[:300])
            body = assert_problem(response, 400, "invalid-input")
            assert ENORMOUS not in json.dumps(body) and HUGE not in json.dumps(body)
            checked += 1
    assert checked > 40


def test_crafted_cursors_are_400_invalid_cursor(
    client: FlaskClient, document: dict[str, Any], every_scope: dict[str, str]
) -> None:
    checked = 0
    for target in targets(document):
        if target.kind != "cursor":
            continue
        for value in BAD_CURSORS:
            response = send(client, target, value, every_scope)
            assert response.status_code == 400, (target, value[:30], response.get_data()[:300])
            body = response.get_json(force=True)
            # one problem class for every cursor; an overlong value may be refused by the
            # request model (invalid-input) before the codec sees it
            assert body["type"].rsplit("/", 1)[-1] in {"invalid-cursor", "invalid-input"}
            assert response.mimetype == "application/problem+json"
            checked += 1
    assert checked >= 4 * len(BAD_CURSORS)


def test_the_largest_values_are_answered_without_error(
    client: FlaskClient, document: dict[str, Any], every_scope: dict[str, str]
) -> None:
    """2**63-1 is in range everywhere: an empty page or a 4xx, never a database error."""
    for target in targets(document):
        value = str(MAX_KEY) if target.kind == "integer" else encode_cursor(MAX_KEY)
        response = send(client, target, value, every_scope)
        assert response.status_code < 500, (target, response.get_data()[:300])


def test_one_invalid_cursor_problem_title(
    client: FlaskClient, app: Flask, every_scope: dict[str, str]
) -> None:
    titles = set()
    for path, name in [
        ("/v1/signals", "cursor"),
        ("/v1/notifications", "after"),
        ("/v1/matches", "cursor"),
        ("/v1/audit/entries", "cursor"),
    ]:
        response = client.get(path, query_string={name: b64("nope")}, headers=every_scope)
        body = assert_problem(response, 400, "invalid-cursor")
        assert body["errors"][0]["parameter"] == name
        titles.add(body["title"])
    assert len(titles) == 1


def test_one_invalid_cursor_class(app: Flask) -> None:
    """Every package is loaded (the app is built): one class answers `invalid-cursor`."""
    from gateway.errors import ProblemError

    found, stack = [], [ProblemError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__dict__.get("slug") == "invalid-cursor":
            found.append(cls)
    assert len(found) == 1
