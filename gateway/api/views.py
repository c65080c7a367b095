"""The OpenAPI document, a human-readable API page that works offline, problem types."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, render_template

from gateway.api.openapi import build_openapi, operation
from gateway.api.validation import json_response
from gateway.errors import NotFound, all_problem_types
from gateway.services import services

bp = Blueprint("api", __name__)


def openapi_document() -> dict[str, Any]:
    cache = services().openapi_documents
    issuer = services().settings.issuer
    if issuer not in cache:
        cache[issuer] = build_openapi(current_app, issuer)
    document: dict[str, Any] = cache[issuer]
    return document


@bp.get("/v1/openapi.json")
@operation(
    operation_id="getOpenApi",
    summary="This API's OpenAPI 3.1 document",
    tags=("meta",),
    cors_any_origin=True,
    public=True,
)
def get_openapi() -> Response:
    return json_response(openapi_document())


@bp.get("/docs")
@operation(
    operation_id="docs", summary="API documentation", documented=False, produces=("text/html",)
)
def docs() -> str:
    return render_template("docs.html", spec=openapi_document())


@bp.get("/problems/<slug>")
@operation(
    operation_id="problemType", summary="Problem type", documented=False, produces=("text/html",)
)
def problem_type(slug: str) -> str:
    problems = all_problem_types()
    if slug not in problems:
        raise NotFound("No such problem type.")
    cls = problems[slug]
    return render_template(
        "problem.html", slug=slug, title=cls.title, status=cls.status, doc=cls.__doc__ or ""
    )
