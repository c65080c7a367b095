"""Ketenpoort: a privacy-first data-sharing gateway for chain partners."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ketenpoort")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

#: The API's semantic version, sent as `API-Version` on every response (ADR /core/version-header).
API_VERSION = "1.0.0"
