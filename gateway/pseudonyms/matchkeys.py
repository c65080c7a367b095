"""Match keys: versioned, domain-separated strings built from normalised identifiers.

A match key is what the OPRF turns into a pseudonym, so its exact bytes are part of
the stored data: changing a rule here changes every pseudonym. Hence the version in
the label (`v1`): a new rule gets a new version (and a re-pseudonymisation), never a
silent change. The known-answer vectors in `tests/pseudonyms/vectors/` catch any
accidental one.

    ketenpoort:v1:bsn:<9 digits>
    ketenpoort:v1:name_dob:<core family name>:<YYYY-MM-DD>

The core family name has only letters and the date only digits and dashes, so the
colon separators cannot be forged by an input. BSNs and dates are only ever matched
exactly (DESIGN.md); recall for misspelt names comes later from more key families.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from gateway.errors import FieldError
from gateway.pseudonyms.errors import InvalidSubject
from gateway.pseudonyms.normalise import (
    FamilyName,
    normalise_bsn,
    normalise_date_of_birth,
    normalise_family_name,
    normalise_given_names,
)

NAMESPACE = "ketenpoort"
VERSION = "v1"
FAMILY_BSN = "bsn"
FAMILY_NAME_DOB = "name_dob"
#: Every key family this version derives, in a stable order.
FAMILIES = (FAMILY_BSN, FAMILY_NAME_DOB)

_T = TypeVar("_T")

MSG_NOT_OBJECT = "must be an object"
MSG_NO_KEY = "needs a valid bsn, or a familyName together with a dateOfBirth"


@dataclass(frozen=True)
class NormalisedSubject:
    """The subject's identifiers after normalisation; `None` where not given."""

    bsn: str | None = None
    family_name: FamilyName | None = None
    given_names: str | None = None
    date_of_birth: str | None = None


def label(family: str, *parts: str) -> str:
    return ":".join((NAMESPACE, VERSION, family, *parts))


def normalise_subject(
    subject: object, *, today: date | None = None, pointer: str = "/subject"
) -> NormalisedSubject:
    """Normalise every given field; report all invalid fields at once.

    `subject` is the JSON object as received (camelCase keys: `bsn`, `familyName`,
    `givenNames`, `dateOfBirth`); a field that is absent or null is not given.
    """
    if not isinstance(subject, Mapping):
        raise InvalidSubject([FieldError(pointer, MSG_NOT_OBJECT)])
    errors: list[FieldError] = []

    def attempt(name: str, normalise: Callable[[object, str], _T]) -> _T | None:
        raw = subject.get(name)
        if raw is None:
            return None
        try:
            return normalise(raw, f"{pointer}/{name}")
        except InvalidSubject as exc:
            errors.extend(exc.errors)
            return None

    bsn = attempt("bsn", lambda v, p: normalise_bsn(v, pointer=p))
    family_name = attempt("familyName", lambda v, p: normalise_family_name(v, pointer=p))
    given_names = attempt("givenNames", lambda v, p: normalise_given_names(v, pointer=p))
    date_of_birth = attempt(
        "dateOfBirth", lambda v, p: normalise_date_of_birth(v, today=today, pointer=p)
    )
    if errors:
        raise InvalidSubject(errors)
    return NormalisedSubject(bsn, family_name, given_names, date_of_birth)


def match_keys(subject: NormalisedSubject) -> dict[str, str]:
    """The match keys a normalised subject yields, by family (possibly none)."""
    keys: dict[str, str] = {}
    if subject.bsn is not None:
        keys[FAMILY_BSN] = label(FAMILY_BSN, subject.bsn)
    if subject.family_name is not None and subject.date_of_birth is not None:
        keys[FAMILY_NAME_DOB] = label(
            FAMILY_NAME_DOB, subject.family_name.core, subject.date_of_birth
        )
    return keys


def derive_match_keys(
    subject: object, *, today: date | None = None, pointer: str = "/subject"
) -> dict[str, str]:
    """Normalise `subject` and build its match keys; at least one must result.

    Raises `InvalidSubject` (400, `invalid-subject`) naming every invalid field, or
    `pointer` itself when the valid fields are not enough for any key.
    """
    keys = match_keys(normalise_subject(subject, today=today, pointer=pointer))
    if not keys:
        raise InvalidSubject([FieldError(pointer, MSG_NO_KEY)])
    return keys
