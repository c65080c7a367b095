"""OAuth 2.0 for partner systems: the authorization server and resource protection.

`init_app(app)` wires both in one place: the authorization server's endpoints and the
token validator that `gateway.security` calls for every protected `/v1` operation.
"""

from __future__ import annotations

from flask import Flask

from gateway.services import EXTENSION, Services


def init_app(app: Flask) -> None:
    from gateway.oauth.resource import GatewayTokenValidator
    from gateway.oauth.server import OAuthService
    from gateway.oauth.views import OAUTH_SERVICE, bp
    from gateway.security import TOKEN_VALIDATOR

    found: Services = app.extensions[EXTENSION]
    service = OAuthService(found.settings, found.db, found.keys)
    found.extra[OAUTH_SERVICE] = service
    found.extra[TOKEN_VALIDATOR] = GatewayTokenValidator(service)
    app.register_blueprint(bp)
