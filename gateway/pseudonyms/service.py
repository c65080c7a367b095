"""Pseudonyms: the OPRF of each match key under the gateway's pseudonym key.

`Pseudonymiser` holds one key-store scalar and its key id; every pseudonym it makes
should be stored with that `kid`, so a later key rotation knows which rows to move
and matching never compares elements made under different keys. Build one per
process (unsealing the key costs a file read and an AES-GCM open), not per request.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from gateway.crypto import oprf
from gateway.keys import KeyPurpose, KeyStore, KeyStoreError
from gateway.pseudonyms.matchkeys import derive_linkage_keys, derive_match_keys

#: Length of a stored pseudonym: one ristretto255 element.
PSEUDONYM_BYTES = oprf.ELEMENT_BYTES


@dataclass(frozen=True)
class Rotation:
    """Moves pseudonyms from one key to another: multiply by `k'·k⁻¹`.

    The factor is secret-equivalent for the rows it applies to, so it is never shown.
    """

    from_kid: str | None
    to_kid: str | None
    _factor: bytes = field(repr=False)

    def apply(self, pseudonym: bytes) -> bytes:
        return oprf.scalar_mult(self._factor, pseudonym)

    def apply_all(self, pseudonyms: Iterable[bytes]) -> list[bytes]:
        return [self.apply(p) for p in pseudonyms]


class Pseudonymiser:
    """Turns subjects into pseudonyms under one secret scalar."""

    def __init__(self, scalar: bytes, *, kid: str | None = None) -> None:
        if not oprf.is_valid_scalar(scalar):
            raise ValueError("a pseudonym key is a canonical, non-zero ristretto255 scalar")
        self._scalar = scalar
        self.kid = kid

    def __repr__(self) -> str:
        return f"Pseudonymiser(kid={self.kid!r})"

    @classmethod
    def from_key_store(cls, keys: KeyStore, kid: str | None = None) -> Pseudonymiser:
        """The active pseudonym key, or the one named `kid` (e.g. a retired one)."""
        record = keys.active(KeyPurpose.PSEUDONYM) if kid is None else keys.get(kid)
        if record.purpose is not KeyPurpose.PSEUDONYM:
            raise KeyStoreError(f"key {record.kid!r} is not a pseudonym key")
        return cls(keys.secret_scalar(record.kid), kid=record.kid)

    @classmethod
    def previous(cls, keys: KeyStore, kid: str, current: Pseudonymiser) -> Pseudonymiser | None:
        """The pseudonym key `kid` if it is the one `current` replaced, else None.

        A blind partner that fetched the key just before a rotation still holds the
        previous one: its evaluations and `matchKeys` are served under that key and
        moved to the current one, so a rotation refuses nothing. Older keys are not
        served (409: fetch the key again), so a retired key does not stay an oracle.
        """
        earlier = [r for r in keys.records(KeyPurpose.PSEUDONYM) if r.kid != current.kid]
        if current.kid is None or not earlier or earlier[-1].kid != kid:
            return None
        return cls(keys.secret_scalar(kid), kid=kid)

    @staticmethod
    def serves(keys: KeyStore, kid: str, current: Pseudonymiser) -> bool:
        """Whether `kid` names `current` or the key `previous` would give, without
        unsealing either (a check of the input, not the work)."""
        if kid == (current.kid or ""):
            return True
        earlier = [r for r in keys.records(KeyPurpose.PSEUDONYM) if r.kid != current.kid]
        return current.kid is not None and bool(earlier) and earlier[-1].kid == kid

    def pseudonym(self, match_key: str) -> bytes:
        """k·H(match key): the 32-byte element that is stored."""
        return oprf.evaluate_element(self._scalar, match_key.encode("utf-8"))

    def pseudonyms_for_keys(self, match_keys: Mapping[str, str]) -> dict[str, bytes]:
        return {family: self.pseudonym(key) for family, key in match_keys.items()}

    def pseudonyms(self, subject: object, *, today: date | None = None) -> dict[str, bytes]:
        """Pseudonyms by key family (`bsn`, `name_dob`) for a subject as received.

        Raises `InvalidSubject` for invalid or insufficient identifiers.
        """
        return self.pseudonyms_for_keys(derive_match_keys(subject, today=today))

    def blind_evaluate(self, blinded_element: bytes) -> bytes:
        """RFC 9497 BlindEvaluate, for partners that pseudonymise obliviously.

        A partner that blinds a match key and unblinds this answer obtains exactly
        `pseudonym(match key)`, without the gateway seeing the key.
        """
        return oprf.blind_evaluate(self._scalar, blinded_element)

    @property
    def public_key(self) -> bytes:
        """pkS = k·G, published for blind clients to verify evaluation proofs."""
        return oprf.scalar_base_mult(self._scalar)

    def blind_evaluate_batch(self, blinded_elements: list[bytes]) -> tuple[list[bytes], bytes]:
        """RFC 9497 VOPRF BlindEvaluateBatch: evaluated elements and one DLEQ proof."""
        return oprf.blind_evaluate_batch(self._scalar, self.public_key, blinded_elements)

    def linkage_pseudonyms(
        self,
        subject: object,
        *,
        today: date | None = None,
        families: Collection[str] | None = None,
    ) -> dict[str, frozenset[bytes]]:
        """Pseudonyms of every linkage family a subject allows (see `linkage_keys`), or
        only of `families` (a category's `linkage_keys`): the OPRF work, a third of a
        signal's cost, is spent only on keys that will be kept."""
        keys = derive_linkage_keys(subject, today=today)
        if families is not None:
            keys = {f: v for f, v in keys.items() if f in families}
        return self.pseudonyms_by_family(keys)

    def pseudonyms_by_family(
        self, keys: Mapping[str, Collection[str]]
    ) -> dict[str, frozenset[bytes]]:
        """Pseudonyms of match keys grouped by family, in one batched OPRF call."""
        flat = [(family, key) for family, values in keys.items() for key in values]
        elements = oprf.evaluate_elements(self._scalar, [k.encode("utf-8") for _, k in flat])
        found: dict[str, set[bytes]] = {family: set() for family in keys}
        for (family, _), element in zip(flat, elements, strict=True):
            found[family].add(element)
        return {family: frozenset(values) for family, values in found.items() if values}

    def rotation_to(self, new: Pseudonymiser) -> Rotation:
        """The rotation that turns this key's pseudonyms into `new`'s."""
        return Rotation(self.kid, new.kid, oprf.rotation_factor(self._scalar, new._scalar))


def by_family(pseudonyms: Mapping[str, bytes | Collection[bytes]]) -> dict[str, frozenset[bytes]]:
    """Pseudonyms as sets by family, whether given one element or several per family."""
    return {
        family: (
            frozenset({bytes(value)})
            if isinstance(value, (bytes, bytearray, memoryview))
            else frozenset(bytes(e) for e in value)
        )
        for family, value in pseudonyms.items()
    }


class PseudonymiserSource:
    """The process's `Pseudonymiser`, unsealed once per key, on first use.

    Built by the composition root; the key is read on first use rather than at start
    because an app may start before `ketenpoort init` has created it (readiness says so).
    Each call checks the key store's active pseudonym key (the store notices its files
    changing), so every process follows `ketenpoort keys rotate pseudonym` without a
    restart.
    """

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._lock = threading.Lock()
        self._found: Pseudonymiser | None = None

    def get(self) -> Pseudonymiser:
        kid = self._keys.active(KeyPurpose.PSEUDONYM).kid
        found = self._found
        if found is None or found.kid != kid:
            with self._lock:
                if self._found is None or self._found.kid != kid:
                    self._found = Pseudonymiser.from_key_store(self._keys, kid)
                found = self._found
        return found
