"""OAuth endpoints (outside /v1): token, introspection, revocation, JWKS, RFC 8414.

They answer RFC 6749 JSON errors; even the checks the request hooks make before the
view (415, 413, 406) are rendered that way for these routes.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request
from werkzeug.exceptions import MethodNotAllowed

from gateway.api.conventions import problem_for_http_exception, render_problem
from gateway.api.openapi import operation
from gateway.api.validation import json_response
from gateway.errors import ProblemError
from gateway.oauth.server import (
    INTROSPECTION_PATH,
    JWKS_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    OAuthService,
)
from gateway.services import services

bp = Blueprint("oauth", __name__)

FORM = ("application/x-www-form-urlencoded",)


def oauth() -> OAuthService:
    return services().oauth


@bp.post(TOKEN_PATH)
@operation(
    operation_id="oauthToken",
    summary="OAuth 2.0 token endpoint (client_credentials, private_key_jwt, DPoP)",
    documented=False,
    public=True,
    consumes=FORM,
)
def token() -> Response:
    return oauth().token_response()


@bp.post(INTROSPECTION_PATH)
@operation(
    operation_id="oauthIntrospect",
    summary="RFC 7662 token introspection",
    documented=False,
    public=True,
    consumes=FORM,
)
def introspect() -> Response:
    return oauth().introspection_response()


@bp.post(REVOCATION_PATH)
@operation(
    operation_id="oauthRevoke",
    summary="RFC 7009 token revocation",
    documented=False,
    public=True,
    consumes=FORM,
)
def revoke() -> Response:
    return oauth().revocation_response()


@bp.get(JWKS_PATH)
@operation(
    operation_id="oauthJwks",
    summary="The token-signing public keys",
    documented=False,
    public=True,
    produces=("application/json", "application/jwk-set+json"),
)
def jwks() -> Response:
    return json_response(oauth().jwks())


@bp.get("/.well-known/oauth-authorization-server")
@operation(
    operation_id="oauthMetadata",
    summary="RFC 8414 authorization server metadata",
    documented=False,
    public=True,
)
def metadata() -> Response:
    return json_response(oauth().metadata())


@bp.app_errorhandler(MethodNotAllowed)
def _method_not_allowed(error: MethodNotAllowed) -> Response:
    """A wrong method fails in routing, before any blueprint is chosen: the OAuth
    endpoints still answer it as RFC 6749 JSON, every other path as problem details."""
    problem = problem_for_http_exception(error)
    if request.path in (TOKEN_PATH, INTROSPECTION_PATH, REVOCATION_PATH):
        return _oauth_error(problem)
    return render_problem(problem)


@bp.errorhandler(ProblemError)
def _oauth_error(error: ProblemError) -> Response:
    """RFC 6749 §5.2 error body for failures found before the view ran."""
    code = "temporarily_unavailable" if error.status >= 500 else "invalid_request"
    body = {"error": code, "error_description": error.detail}
    response = Response(json.dumps(body), status=error.status, mimetype="application/json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response
