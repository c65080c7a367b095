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
"""

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
