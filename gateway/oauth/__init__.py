"""OAuth 2.0 for partner systems: the authorization server and resource protection.

The composition root (`gateway.app`) builds the authorization server (`server.OAuthService`)
and the token validator (`resource.GatewayTokenValidator`) that `gateway.security` calls
for every protected `/v1` operation, and registers the endpoints (`views.bp`).
"""
