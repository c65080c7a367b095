"""Typed settings from the `KETENPOORT_*` environment variables, validated once at start.

A bad value stops the start with one line that names the variable, so an operator
never has to read a traceback to find a typo.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "KETENPOORT_"
MAX_BODY_BYTES = 256 * 1024


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/ketenpoort.db"
    keys_dir: Path = Path("keys")
    policy: Path = Path("policies/twente.yaml")
    issuer: str = "http://127.0.0.1:8080"
    master_key: bytes | None = field(default=None, repr=False)
    log_format: str = "auto"
    log_level: str = "INFO"
    max_body_bytes: int = MAX_BODY_BYTES
    testing: bool = False
    #: Run the audit sequencer in a background thread of this process (off in tests).
    audit_sequencer: bool = True
    #: Web sessions end after this many seconds without a request, and after the absolute
    #: lifetime whatever happens; sign-in locks for 1, 2, 4… minutes after so many failures.
    web_idle_timeout: int = 15 * 60
    web_absolute_timeout: int = 8 * 60 * 60
    web_lockout_threshold: int = 5

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


# variable name -> (field, parser)
def _parse_database_url(value: str) -> str:
    try:
        url = make_url(value)
    except ArgumentError as exc:
        raise ValueError("not a SQLAlchemy database URL") from exc
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg":
        raise ValueError("use the psycopg 3 driver: postgresql+psycopg://...")
    return value


def _parse_issuer(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL such as https://ketenpoort.example.nl")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    if value.endswith("/"):
        raise ValueError("must not end with a slash")
    return value


def _parse_master_key(value: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be 32 bytes in base64url") from exc
    if len(raw) != 32:
        raise ValueError(f"must be 32 bytes in base64url, got {len(raw)} bytes")
    return raw


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _parse_positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError("must be a whole number") from None
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _parse_choice(*choices: str) -> Any:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


_PARSERS: dict[str, tuple[str, Any]] = {
    "DATABASE_URL": ("database_url", _parse_database_url),
    "KEYS_DIR": ("keys_dir", Path),
    "POLICY": ("policy", Path),
    "ISSUER": ("issuer", _parse_issuer),
    "MASTER_KEY": ("master_key", _parse_master_key),
    "LOG_FORMAT": ("log_format", _parse_choice("auto", "json", "console")),
    "LOG_LEVEL": ("log_level", _parse_choice("DEBUG", "INFO", "WARNING", "ERROR")),
    "AUDIT_SEQUENCER": ("audit_sequencer", _parse_bool),
    "WEB_IDLE_TIMEOUT": ("web_idle_timeout", _parse_positive_int),
    "WEB_ABSOLUTE_TIMEOUT": ("web_absolute_timeout", _parse_positive_int),
    "WEB_LOCKOUT_THRESHOLD": ("web_lockout_threshold", _parse_positive_int),
}


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read settings from the environment, then apply `overrides` (used by tests)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for suffix, (name, parse) in _PARSERS.items():
        raw = env.get(ENV_PREFIX + suffix)
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{ENV_PREFIX}{suffix}: {exc}") from None
    settings = Settings(**values)
    if overrides:
        known = {f.name for f in fields(Settings)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        checked = dict(overrides)
        for suffix, (name, parse) in _PARSERS.items():
            if isinstance(checked.get(name), str) and name not in {"keys_dir", "policy"}:
                try:
                    checked[name] = parse(checked[name])
                except ValueError as exc:
                    raise ConfigError(f"{ENV_PREFIX}{suffix}: {exc}") from None
        for name in ("keys_dir", "policy"):
            if name in checked:
                checked[name] = Path(checked[name])
        settings = replace(settings, **checked)
    return settings
