"""Describe routes once, and build the OpenAPI 3.1 document from those descriptions.

A view is decorated with `operation(...)`, naming the same pydantic models that the view
uses to validate its input and shape its output; the document at `/v1/openapi.json` is
generated from the registered routes, so it cannot drift from what the code accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway import API_VERSION
from gateway.api.models import Problem
from gateway.errors import PROBLEM_MEDIA_TYPE

F = TypeVar("F", bound=Callable[..., Any])

CONTACT = {
    "name": "Ketenpoort beheer",
    "url": "https://ketenpoort.example.nl/contact",
    "email": "beheer@ketenpoort.example.nl",
}

ERROR_DESCRIPTIONS = {
    400: "Invalid input; `errors` lists every problem with a JSON pointer.",
    401: "Missing, invalid, expired or revoked access token.",
    403: "The token lacks the scope, or the policy denies the action.",
    404: "Not found (also for resources of another organisation).",
    406: "None of the accepted media types can be produced.",
    409: "Conflict with the current state.",
    413: "The body is larger than 256 KiB.",
    415: "Missing or unsupported Content-Type.",
    422: "The Idempotency-Key was used before with another body.",
    429: "Too many requests; see Retry-After.",
    500: "Internal error; the request id identifies it in the logs.",
    503: "Temporarily unavailable; see Retry-After.",
}
#: Every operation may meet these: 503 when the database is unavailable (with Retry-After).
DEFAULT_ERRORS = (406, 500, 503)


@dataclass(frozen=True)
class Operation:
    """What one route accepts and answers; read by the request hooks and the document."""

    operation_id: str
    summary: str
    tags: tuple[str, ...] = ()
    description: str = ""
    request: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    #: Further success statuses answered with the same body (e.g. 202: accepted, waiting).
    other_statuses: tuple[int, ...] = ()
    produces: tuple[str, ...] = ("application/json",)
    consumes: tuple[str, ...] = ()
    scopes: tuple[str, ...] | None = None
    errors: tuple[int, ...] = ()
    response_headers: dict[str, str] = field(default_factory=dict)
    documented: bool = True
    cors_any_origin: bool = False
    #: An operation without scopes must say it is public; otherwise the app will not start.
    public: bool = False


def operation(**kwargs: Any) -> Callable[[F], F]:
    """Attach an `Operation` to a view function."""
    op = Operation(**kwargs)
    if op.request is not None and not op.consumes:
        op = Operation(**{**kwargs, "consumes": ("application/json",)})

    def decorate(view: F) -> F:
        view.__operation__ = op  # type: ignore[attr-defined]
        return view

    return decorate


def operation_of(view: Callable[..., Any] | None) -> Operation | None:
    return getattr(view, "__operation__", None)


_PATH_PARAM = re.compile(r"<(?:[a-z_]+:)?([A-Za-z_][A-Za-z0-9_]*)>")


def _schema_components(models: set[type[BaseModel]]) -> tuple[dict[Any, Any], dict[str, Any]]:
    ordered = sorted(models, key=lambda m: m.__name__)
    keys: list[tuple[type[BaseModel], Any]] = []
    for model in ordered:
        keys.append((model, "validation"))
        keys.append((model, "serialization"))
    refs, top = models_json_schema(keys, by_alias=True, ref_template="#/components/schemas/{model}")
    return refs, top.get("$defs", {})


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the same request again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def _header_ref() -> dict[str, Any]:
    return {"API-Version": {"$ref": "#/components/headers/API-Version"}}


def build_openapi(app: Flask, issuer: str) -> dict[str, Any]:
    ops: list[tuple[str, str, Operation]] = []
    for rule in app.url_map.iter_rules():
        op = operation_of(app.view_functions.get(rule.endpoint))
        if op is None or not op.documented:
            continue
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        path = _PATH_PARAM.sub(r"{\1}", rule.rule)
        if not path.startswith("/v1/"):
            continue
        for method in methods:
            ops.append((path.removeprefix("/v1"), method.lower(), op))

    models: set[type[BaseModel]] = {Problem}
    for _, _, op in ops:
        models.update(m for m in (op.request, op.response) if m is not None)
    refs, schemas = _schema_components(models)

    paths: dict[str, dict[str, Any]] = {}
    scopes: dict[str, str] = {}
    for path, method, op in sorted(ops):
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": list(op.tags),
        }
        if op.description:
            entry["description"] = op.description
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PATH_PARAM.findall(path.replace("{", "<").replace("}", ">"))
        ]
        if op.query is not None:
            query_schema = op.query.model_json_schema(by_alias=True)
            required = set(query_schema.get("required", []))
            for name, prop in query_schema.get("properties", {}).items():
                description = prop.pop("description", None)
                prop.pop("title", None)
                param: dict[str, Any] = {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "schema": prop,
                }
                if description:
                    param["description"] = description
                parameters.append(param)
        if parameters:
            entry["parameters"] = parameters
        if op.request is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {
                    media: {"schema": refs[(op.request, "validation")]} for media in op.consumes
                },
            }
        success: dict[str, Any] = {
            "description": "Success.",
            "headers": {**_header_ref()},
        }
        for name, description in op.response_headers.items():
            success["headers"][name] = {"description": description, "schema": {"type": "string"}}
        if op.response is not None:
            success["content"] = {
                media: {"schema": refs[(op.response, "serialization")]} for media in op.produces
            }
        elif op.status != 204:
            success["content"] = {
                media: {"schema": {"type": "object" if media.endswith("json") else "string"}}
                for media in op.produces
            }
        responses: dict[str, Any] = {str(op.status): success}
        for other in op.other_statuses:
            responses[str(other)] = success
        codes = set(op.errors) | set(DEFAULT_ERRORS)
        if op.request is not None or parameters or method in {"post", "put", "patch"}:
            codes.add(400)
        if op.request is not None:
            codes.update({413, 415})
        if op.scopes is not None:
            codes.update({401, 403})
            entry["security"] = [{"oauth2": list(op.scopes)}]
            scopes.update({s: s for s in op.scopes})
        else:
            entry["security"] = []
        for code in sorted(codes):
            responses[str(code)] = {"$ref": f"#/components/responses/Problem{code}"}
        entry["responses"] = responses
        paths.setdefault(path, {})[method] = entry

    problem_ref = refs[(Problem, "serialization")]
    problem_responses = {
        f"Problem{code}": {
            "description": description,
            "headers": {**_header_ref(), **_RETRY_AFTER} if code in (429, 503) else _header_ref(),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}},
        }
        for code, description in ERROR_DESCRIPTIONS.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ketenpoort API",
            "version": API_VERSION,
            "description": (
                "Privacy-first gateway for chain partners of a report desk on human "
                "trafficking: submit pseudonymised signals with encrypted payloads, "
                "learn of matches as the data-sharing policy allows, and verify the "
                "tamper-evident audit log."
            ),
            "contact": CONTACT,
            "license": {"name": "EUPL-1.2", "identifier": "EUPL-1.2"},
        },
        "servers": [{"url": f"{issuer}/v1", "description": "This gateway."}],
        "tags": [
            {"name": t, "description": t.capitalize()}
            for t in sorted({t for _, _, o in ops for t in o.tags})
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "headers": {
                "API-Version": {
                    "description": "The full semantic version of this API.",
                    "schema": {"type": "string", "example": API_VERSION},
                }
            },
            "responses": problem_responses,
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "description": (
                        "Client credentials with private_key_jwt client authentication "
                        "(RFC 7523); access tokens are RFC 9068 JWTs, optionally DPoP-bound."
                    ),
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": f"{issuer}/oauth/token",
                            "scopes": dict(sorted(scopes.items())),
                        }
                    },
                }
            },
        },
    }
