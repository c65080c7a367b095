"""Partner registry: organisations, their OAuth clients, and the directory.

The names load lazily, so that the `ketenpoort` command tree does not import the
registry (and SQLAlchemy) to build its `--help`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.partners.kinds import KINDS
    from gateway.partners.registry import (
        BASE_SCOPES,
        MELDPUNT_ID,
        MELDPUNT_SCOPES,
        RegistryError,
    )

__all__ = ["BASE_SCOPES", "KINDS", "MELDPUNT_ID", "MELDPUNT_SCOPES", "RegistryError"]

_LAZY = {
    "KINDS": "gateway.partners.kinds",
    "BASE_SCOPES": "gateway.partners.registry",
    "MELDPUNT_ID": "gateway.partners.registry",
    "MELDPUNT_SCOPES": "gateway.partners.registry",
    "RegistryError": "gateway.partners.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway.partners' has no attribute {name!r}")
    return getattr(import_module(module), name)
