"""OAuth errors beyond RFC 6749's, each carrying its wire code and HTTP status."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidClientError, OAuth2Error

#: RFC 6749 §5.2 allows only %x20-21 / %x23-5B / %x5D-7E in `error_description`.
_ALLOWED = {chr(c) for c in range(0x20, 0x7F)} - {'"', "\\"}


def safe_description(text: str) -> str:
    return "".join(ch if ch in _ALLOWED else "?" for ch in text)[:300]


class InvalidDPoPProofError(OAuth2Error):  # type: ignore[misc]
    """RFC 9449 §5: the DPoP proof at the token endpoint is missing or invalid."""

    error = "invalid_dpop_proof"
    status_code = 400


class RateLimitedError(OAuth2Error):  # type: ignore[misc]
    """Too many requests: 429 with Retry-After (error code from RFC 6749 §4.1.2.1)."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, retry_after: int, description: str) -> None:
        super().__init__(description=description)
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = list(super().get_headers())
        headers.append(("Retry-After", str(self.retry_after)))
        return headers


def invalid_client(description: str, *, basic_attempted: bool = False) -> OAuth2Error:
    """invalid_client: 400, or 401 with a Basic challenge when the client tried Basic."""
    if basic_attempted:
        return InvalidClientError(description=safe_description(description), status_code=401)
    return InvalidClientError(description=safe_description(description))
