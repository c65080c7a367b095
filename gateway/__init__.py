"""Ketenpoort: a privacy-first data-sharing gateway for chain partners."""

#: The software version: the one source (`pyproject.toml` reads it as `dynamic`), a
#: constant so that `ketenpoort --version` needs no `importlib.metadata` (slower to
#: import than a bare interpreter starts).
__version__ = "0.1.0"

#: The API's semantic version, sent as `API-Version` on every response (ADR /core/version-header).
API_VERSION = "1.0.0"
