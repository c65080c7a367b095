"""Ketenpoort partner client: connect a case system in ten lines.

    from gateway.client import PartnerClient
    client = PartnerClient("https://ketenpoort.example.nl", "police-bvh",
                           signing_key="keys/signing.jwk.json",
                           encryption_key="keys/encryption.jwk.json",
                           state_path="var/ketenpoort-client.json")
    signal = client.submit_signal("BVH-2026-00123", "possible-victim",
                                  {"bsn": "…", "familyName": "…", "dateOfBirth": "…"},
                                  {"summary": "…"})
    client.verify()

Dependencies: requests, joserfc and cryptography — a subset of the gateway's.

The names load lazily, so that `ketenpoort partner --help` does not import the client's
HTTP and cryptography stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.client.client import PartnerClient
    from gateway.client.errors import (
        ApiError,
        DecryptionError,
        KetenpoortError,
        OAuthError,
        TransportError,
        WitnessError,
    )

__all__ = [
    "ApiError",
    "DecryptionError",
    "KetenpoortError",
    "OAuthError",
    "PartnerClient",
    "TransportError",
    "WitnessError",
]

_LAZY = {
    "PartnerClient": "gateway.client.client",
    **dict.fromkeys(
        (
            "ApiError",
            "DecryptionError",
            "KetenpoortError",
            "OAuthError",
            "TransportError",
            "WitnessError",
        ),
        "gateway.client.errors",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway.client' has no attribute {name!r}")
    return getattr(import_module(module), name)
