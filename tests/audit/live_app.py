"""WSGI factory for the live-server test: the gateway with a stand-in token validator.

TEMPORARY: replaced by the real OAuth fixture at merge (then the live test gets a real
token from the token endpoint instead).
"""

from __future__ import annotations

import os

from flask import Flask, request

from gateway.actors import Actor
from gateway.app import create_app
from gateway.errors import Unauthorized


def create() -> Flask:
    app = create_app()
    token = os.environ["KETENPOORT_TEST_TOKEN"]
    actor = Actor(
        type="client",
        id="meldpunt-audit",
        organisation="meldpunt",
        scopes=frozenset({"audit:read"}),
    )

    class _StandIn:
        def authenticate(self, required_scopes: tuple[str, ...]) -> Actor:
            if request.headers.get("Authorization") != f"Bearer {token}":
                raise Unauthorized("Missing or invalid access token.")
            return actor

    app.extensions["ketenpoort"].extra["token_validator"] = _StandIn()
    return app
