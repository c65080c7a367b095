"""Exceptions of the partner client: each carries what the gateway said."""

from __future__ import annotations

from typing import Any


class KetenpoortError(Exception):
    """Base of every error the partner client raises."""


class ApiError(KetenpoortError):
    """The gateway answered with an RFC 9457 problem (or another error status)."""

    def __init__(self, status: int, body: dict[str, Any] | None, retry_after: float | None = None):
        self.status = status
        self.body = body or {}
        self.type: str = self.body.get("type", "about:blank")
        self.title: str = self.body.get("title", "")
        self.detail: str = self.body.get("detail", "")
        self.errors: list[dict[str, Any]] = self.body.get("errors", [])
        self.request_id: str | None = self.body.get("instance")
        self.retry_after = retry_after
        super().__init__(f"{status} {self.type}: {self.detail or self.title}")

    @property
    def slug(self) -> str:
        return self.type.rsplit("/", 1)[-1]


class OAuthError(KetenpoortError):
    """The token endpoint refused: RFC 6749 `error` and `error_description`."""

    def __init__(self, status: int, error: str, description: str = ""):
        self.status = status
        self.error = error
        self.description = description
        super().__init__(f"{status} {error}: {description}")


class TransportError(KetenpoortError):
    """The gateway could not be reached after every retry."""


class DecryptionError(KetenpoortError):
    """A payload could not be opened with this partner's encryption key."""


class WitnessError(KetenpoortError):
    """The audit log is not append-only as seen by this partner: a fork or a lost entry."""
