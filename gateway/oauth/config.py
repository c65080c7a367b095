"""Every OAuth lifetime and limit in one place (the profile's numbers, DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.crypto.jose import CLIENT_SIGNING_ALGORITHMS


@dataclass
class OAuthConfig:
    #: RFC 9068 access tokens: at most 600 s (DESIGN.md "OAuth profile").
    access_token_lifetime: int = 600
    #: RFC 7523 assertions: `exp - iat` at most 300 s.
    assertion_max_lifetime: int = 300
    #: How far in the future an `iat` may be (clock skew), for assertions and proofs.
    clock_skew: int = 60
    #: How old a DPoP proof's `iat` may be.
    dpop_max_age: int = 300
    client_algorithms: tuple[str, ...] = CLIENT_SIGNING_ALGORITHMS
    #: Fixed window (seconds) of the per-address failure count and the refusal audit.
    rate_window: int = 60
    #: Failed authentications (token endpoints and `/v1`) per client address and window
    #: before further failures from it are answered 429; successes never are. The
    #: per-client token buckets are `Settings.*rate_limit_per_client` (gateway.ratelimit).
    failures_per_address: int = 600
    #: Refusal audit: at most this many entries per window in all (see README).
    refusal_entries_per_window: int = 200
    #: Seconds a cached signing key is used before the key store is read again.
    key_cache_seconds: int = 60
