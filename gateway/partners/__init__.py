"""Partner registry: organisations, their OAuth clients, and the directory.

The names load lazily, so that the `ketenpoort` command tree does not import the
registry (and SQLAlchemy) to build its `--help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway._lazy import lazy_exports

if TYPE_CHECKING:
    from gateway.partners.kinds import KINDS
    from gateway.partners.registry import (
        BASE_SCOPES,
        MELDPUNT_ID,
        MELDPUNT_SCOPES,
        RegistryError,
    )

__all__ = ["BASE_SCOPES", "KINDS", "MELDPUNT_ID", "MELDPUNT_SCOPES", "RegistryError"]

__getattr__ = lazy_exports(
    __name__,
    {
        "gateway.partners.kinds": ("KINDS",),
        "gateway.partners.registry": (
            "BASE_SCOPES",
            "MELDPUNT_ID",
            "MELDPUNT_SCOPES",
            "RegistryError",
        ),
    },
)
