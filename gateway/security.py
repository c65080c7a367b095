"""Resource protection: every `/v1` operation declares its scopes, and a request hook
enforces them before the view runs.

The token validator itself (RFC 9068 JWTs, DPoP, revocation) is built by the composition
root and held as `services().token_validator`.
"""

from __future__ import annotations

from flask import Flask, g

from gateway.actors import Actor
from gateway.api.openapi import Operation, operation_of
from gateway.errors import Unauthorized
from gateway.services import services


def enforce(op: Operation) -> None:
    if op.scopes is None:
        return
    g.actor = services().token_validator.authenticate(op.scopes)


def current_actor() -> Actor:
    actor: Actor | None = g.get("actor")
    if actor is None:
        raise Unauthorized("Authentication required.", headers={"WWW-Authenticate": "Bearer"})
    return actor


class UnprotectedRouteError(RuntimeError):
    """A `/v1` route declares neither scopes nor that it is public."""


def check_every_route_is_protected(app: Flask) -> None:
    """Refuse to start when a `/v1` route has no operation or no scopes (fail closed)."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        op = operation_of(app.view_functions.get(rule.endpoint))
        if op is None or (op.scopes is None and not op.public):
            raise UnprotectedRouteError(
                f"{rule.rule} must declare scopes=… or public=True in its @operation"
            )
