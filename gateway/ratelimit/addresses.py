"""Who is calling: the client address, believed from `X-Forwarded-For` only when the
immediate peer is a configured trusted proxy (`KETENPOORT_TRUSTED_PROXIES`).

Behind the TLS proxy every partner shares the proxy's socket address, so keying limits
on it would let one caller lock out all. But an `X-Forwarded-For` header from anyone
else is the caller's own invention, so it is ignored unless the peer is trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import request
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway.config import ProxyNetworks

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class TrustedProxyFix:
    """werkzeug's ProxyFix (one hop of `X-Forwarded-For` and `-Proto`), applied only
    when the socket peer is one of `trusted`; any other peer's headers are ignored."""

    def __init__(self, app: WSGIApplication, trusted: ProxyNetworks) -> None:
        self.app = app
        self.trusted = trusted
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=0, x_port=0, x_prefix=0)

    def is_trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.trusted and self.is_trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def install(flask_app: Any, trusted: ProxyNetworks) -> None:
    """Wrap the app's WSGI callable (tests' clients go through it too)."""
    flask_app.wsgi_app = TrustedProxyFix(flask_app.wsgi_app, trusted)


def client_address() -> str:
    """The caller's address; IPv6 by /64, so one host cannot spread over many counters."""
    raw = request.remote_addr or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
