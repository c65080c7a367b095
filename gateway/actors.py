"""Who is acting: a partner system (OAuth client), a person (web UI user) or the system.

One type shared by resource protection, the policy engine and the audit log, so that a
decision and its audit entry name the same actor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ActorType = Literal["client", "user", "system", "anonymous"]


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str
    organisation: str | None = None
    organisation_kind: str | None = None
    role: str | None = None  # users: coordinator, privacy-officer, admin
    scopes: frozenset[str] = field(default_factory=frozenset)

    def as_audit(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "id": self.id}
        if self.organisation is not None:
            data["organisation"] = self.organisation
        if self.role is not None:
            data["role"] = self.role
        return data


SYSTEM = Actor(type="system", id="ketenpoort")


def cli_actor() -> Actor:
    """The operator running a CLI administration step (the OS user name)."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry in a container
        name = "unknown"
    return Actor(type="user", id=f"cli:{name}", role="admin")
