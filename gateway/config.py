"""Typed settings from the `KETENPOORT_*` environment variables, validated once at start.

A bad value stops the start with one line that names the variable, so an operator
never has to read a traceback to find a typo.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.errors import OperatorError

ENV_PREFIX = "KETENPOORT_"
MAX_BODY_BYTES = 256 * 1024


class ConfigError(OperatorError):
    """A setting is missing or malformed; the message names the variable."""


_UNITS = {"s": 1, "m": 60, "h": 3600}
_RATE = re.compile(
    r"^\s*(\d{1,9}(?:\.\d{1,6})?)\s*/\s*([smh])\s*(?:burst\s+(\d{1,9})\s*)?$", re.ASCII
)
#: Bounds that keep the bucket arithmetic sane (and a typo from disabling the limit).
MAX_RATE_PER_SECOND = 1_000_000.0
MAX_BURST = 1_000_000


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `rate` tokens per second refill, at most `burst` held."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (0 < self.rate <= MAX_RATE_PER_SECOND) or math.isnan(self.rate):
            raise ValueError(f"the rate must be above 0 and at most {MAX_RATE_PER_SECOND:g}/s")
        if not 1 <= self.burst <= MAX_BURST:
            raise ValueError(f"the burst must be 1 to {MAX_BURST}")

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """`"20/s burst 40"`, `"120/m"` (burst defaults to the count per unit, at least 1)."""
        match = _RATE.match(text)
        if match is None:
            raise ValueError('must look like "20/s burst 40" (units s, m or h; burst optional)')
        count, unit, burst = match.groups()
        per_unit = float(count)
        rate = per_unit / _UNITS[unit]
        return cls(rate=rate, burst=int(burst) if burst else max(1, math.ceil(per_unit)))

    def __str__(self) -> str:
        """The setting's own syntax (per hour unless that needs more than 9 digits)."""
        per_hour = self.rate * 3600
        count, unit = (per_hour, "h") if per_hour < 1e9 else (self.rate, "s")
        number = f"{count:.6f}".rstrip("0").rstrip(".")
        return f"{number}/{unit} burst {self.burst}"


ProxyNetworks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_trusted_proxies(text: str) -> ProxyNetworks:
    """Comma-separated addresses or CIDR networks, e.g. `10.0.0.5, 192.168.1.0/24`."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item[:60]!r} is not an IP address or CIDR network") from None
    return tuple(networks)


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
    #: Run the background jobs — the audit sequencer, matching, retention, alerts — in
    #: daemon threads (off in tests; `serve` runs them in a process of their own).
    #: `KETENPOORT_AUDIT_SEQUENCER` is the old name.
    background_jobs: bool = True
    #: Token buckets per authenticated client: every `/v1` request, and token requests.
    #: Generous by default; a partner system that needs more asks the meldpunt.
    rate_limit_per_client: RateLimit = RateLimit(rate=50.0, burst=500)
    token_rate_limit_per_client: RateLimit = RateLimit(rate=2.0, burst=120)
    #: Failed authentications per client address and minute before further failures
    #: from that address are answered 429 (successful ones never are).
    failures_per_address: int = 600
    #: Peers whose `X-Forwarded-For` is believed (the TLS proxy); none by default.
    trusted_proxies: ProxyNetworks = ()
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
    from sqlalchemy.engine import make_url  # here: the CLI's --help reads the defaults
    from sqlalchemy.exc import ArgumentError

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


def _parse_rate_limit(value: str) -> RateLimit:
    return RateLimit.parse(value)


def _parse_positive_int(value: str) -> int:
    text = value.strip()
    valid = text.isascii() and text.isdigit() and len(text) <= 9
    if not valid or not 1 <= int(text) <= MAX_BURST:
        raise ValueError(f"must be a whole number from 1 to {MAX_BURST}")
    return int(text)


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
    "BACKGROUND_JOBS": ("background_jobs", _parse_bool),
    "RATE_LIMIT_PER_CLIENT": ("rate_limit_per_client", _parse_rate_limit),
    "TOKEN_RATE_LIMIT_PER_CLIENT": ("token_rate_limit_per_client", _parse_rate_limit),
    "FAILURES_PER_ADDRESS": ("failures_per_address", _parse_positive_int),
    "TRUSTED_PROXIES": ("trusted_proxies", parse_trusted_proxies),
    "WEB_IDLE_TIMEOUT": ("web_idle_timeout", _parse_positive_int),
    "WEB_ABSOLUTE_TIMEOUT": ("web_absolute_timeout", _parse_positive_int),
    "WEB_LOCKOUT_THRESHOLD": ("web_lockout_threshold", _parse_positive_int),
}

#: Old variable names still accepted: old suffix -> current suffix (the current wins).
_ALIASES = {"AUDIT_SEQUENCER": "BACKGROUND_JOBS"}


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read settings from the environment, then apply `overrides` (used by tests)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for suffix, (name, parse) in _PARSERS.items():
        raw = env.get(ENV_PREFIX + suffix)
        old = next((o for o, new in _ALIASES.items() if new == suffix), None)
        if (raw is None or raw == "") and old is not None:
            raw, suffix = env.get(ENV_PREFIX + old), old
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
