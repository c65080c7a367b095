"""Partner registry: organisations, their OAuth clients, and the directory."""

from gateway.partners.registry import (
    BASE_SCOPES,
    KINDS,
    MELDPUNT_ID,
    MELDPUNT_SCOPES,
    RegistryError,
)

__all__ = ["BASE_SCOPES", "KINDS", "MELDPUNT_ID", "MELDPUNT_SCOPES", "RegistryError"]
