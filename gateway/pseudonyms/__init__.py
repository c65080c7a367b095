"""Normalisation of subject identifiers, match keys, and pseudonyms (RFC 9497 OPRF)."""

from gateway.pseudonyms.errors import InvalidSubject
from gateway.pseudonyms.matchkeys import (
    FAMILIES,
    NormalisedSubject,
    derive_match_keys,
    match_keys,
    normalise_subject,
)
from gateway.pseudonyms.normalise import FamilyName
from gateway.pseudonyms.service import PSEUDONYM_BYTES, Pseudonymiser, Rotation

__all__ = [
    "FAMILIES",
    "PSEUDONYM_BYTES",
    "FamilyName",
    "InvalidSubject",
    "NormalisedSubject",
    "Pseudonymiser",
    "Rotation",
    "derive_match_keys",
    "match_keys",
    "normalise_subject",
]
