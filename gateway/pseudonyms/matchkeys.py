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
exactly (DESIGN.md).

Linkage families (`linkage_keys`): typo-tolerant families on top of the two above,
each under its own label `ketenpoort:v1:<family>:...` (a new rule for a family is a
new version of that family, never a silent change). `bsn` and `name_dob` keep their
labels and values, so stored pseudonyms keep matching. A family is multi-valued where
its rule yields several keys (deletion neighbours, name parts):

    swap_dob    {family, first given} as an unordered pair + dob (swapped fields)
    given_dob   first given name + dob (family name changed, missing or misspelt); for
                several given names also all of them joined ("Kate Lin" meets "Katelin")
    names_year  family + first given + birth year (a typo in day or month)
    names_ym    family + first given + birth year + month, and + birth year + day: a
                typo in one of day and month (namesakes born in the same year seldom
                share either; `names_year` alone cannot tell them from a typo)
    names       family + first given (no or a wrong date of birth)
    init_dob    family + first initial + dob
    phon_dob    Dutch-aware phonetic family name + dob
    del_dob     each one-deletion neighbour of the family name + dob (≤ 17 keys), in
                spelling form and, where that differs (ij, ue, glued van), as written
                and then spelt (a few more keys; at most 34, under the blind
                submission's 40 per family)
    part_dob    each part of a double/hyphenated family name + dob
    dm_swap     each name (as in xname_dob) + year + {day, month} unordered (day and
                month swapped)
    xname_dob   family and first given name each alone + dob (swapped fields with a typo)
    names_del   one-deletion neighbours of family, then of first given, + the other name
                (no date: a typo in a name of a record without a date of birth)

`del_dob` and `names_del` delete in fewer positions where long names would make a
signal yield more than `MAX_LINKAGE_KEYS` keys (`_fit`).
    fgi_dob     first letter of the family name + first given name + dob

`swap_dob` and `xname_dob` also read the given names as a family name would be read
("Ten Cate" in the given-name field is the family name "cate"), since that is what a
swapped record holds there.

Names in the new families are in `spelling_form` (ij/y, ue/u, glued "van"), so
"Müller"/"Mueller" and "IJsbrand"/"Ysbrand" share keys. BSN never enters a typo
family, and a date of birth only ever matches exactly, except through `dm_swap`
(which is exactly the day/month swap) and the year in `names_year`.

What a record without some field still yields (the rest is simply not derived):
no family name → `bsn`, `given_dob`, `xname_dob`; no date of birth → `bsn`, `names`,
`names_del`; no given names → `bsn`, `name_dob`, `phon_dob`, `del_dob`, `part_dob`,
`xname_dob`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from gateway.errors import FieldError
from gateway.pseudonyms.errors import InvalidSubject
from gateway.pseudonyms.normalise import (
    MAX_DELETION_NEIGHBOURS,
    FamilyName,
    deletion_neighbours,
    first_given_name,
    initials,
    normalise_bsn,
    normalise_date_of_birth,
    normalise_family_name,
    normalise_given_names,
    phonetic_code,
    spelling_form,
)

NAMESPACE = "ketenpoort"
VERSION = "v1"
FAMILY_BSN = "bsn"
FAMILY_NAME_DOB = "name_dob"
#: Every key family this version derives, in a stable order.
FAMILIES = (FAMILY_BSN, FAMILY_NAME_DOB)
FAMILY_SWAP_DOB = "swap_dob"
FAMILY_GIVEN_DOB = "given_dob"
FAMILY_NAMES_YEAR = "names_year"
FAMILY_NAMES = "names"
FAMILY_INIT_DOB = "init_dob"
FAMILY_PHON_DOB = "phon_dob"
FAMILY_DEL_DOB = "del_dob"
FAMILY_PART_DOB = "part_dob"
FAMILY_DM_SWAP = "dm_swap"
FAMILY_XNAME_DOB = "xname_dob"
FAMILY_NAMES_DEL = "names_del"
FAMILY_FGI_DOB = "fgi_dob"
FAMILY_NAMES_YM = "names_ym"
#: Every linkage family (the v1 pair first), in a stable order. Family names fit
#: `signal_pseudonyms.family` (32) and their comma-joined list `linkage_keys` (128).
LINKAGE_FAMILIES = (
    FAMILY_BSN,
    FAMILY_NAME_DOB,
    FAMILY_SWAP_DOB,
    FAMILY_GIVEN_DOB,
    FAMILY_NAMES_YEAR,
    FAMILY_NAMES,
    FAMILY_INIT_DOB,
    FAMILY_PHON_DOB,
    FAMILY_DEL_DOB,
    FAMILY_PART_DOB,
    FAMILY_DM_SWAP,
    FAMILY_XNAME_DOB,
    FAMILY_NAMES_DEL,
    FAMILY_FGI_DOB,
    FAMILY_NAMES_YM,
)
#: Families that may hold more than one key per signal.
MULTI_VALUED = frozenset(
    {
        FAMILY_DEL_DOB,
        FAMILY_PART_DOB,
        FAMILY_XNAME_DOB,
        FAMILY_NAMES_DEL,
        FAMILY_SWAP_DOB,
        FAMILY_DM_SWAP,
        FAMILY_GIVEN_DOB,
        FAMILY_NAMES_YM,
    }
)

#: A signal never yields more keys than this: at about 48 µs of OPRF work a key (one
#: core of the development machine, `bench/bench_linkage.py`), 38 keys are 1.8 ms,
#: under issue 14's 2 ms a signal. The two deletion families give way (`_fit`), the
#: others stay whole (at most 24 keys). Before this cap (2026-11) the longest Dutch
#: test-set names gave 57 keys (2.75 ms) and FEBRL's 66; the cap costs FEBRL3's
#: strong tier one pair in a thousand and FEBRL4 nothing.
MAX_LINKAGE_KEYS = 38
#: `part_dob` keys a family name's first parts only (real double names have two or
#: three), so that the families other than the deletion ones stay within 24 keys.
MAX_NAME_PARTS = 4

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


def linkage_keys(subject: NormalisedSubject) -> dict[str, frozenset[str]]:
    """Every linkage family's keys for a normalised subject (families it allows only).

    `bsn` and `name_dob` are exactly `match_keys`'s. A family whose fields are missing
    is left out rather than refused, so a record without a family name or a date of
    birth still links through what it has (see the module docstring).
    """
    keys: dict[str, frozenset[str]] = {f: frozenset({k}) for f, k in match_keys(subject).items()}
    dob = subject.date_of_birth
    family = spelling_form(subject.family_name.core) if subject.family_name else ""
    given = first_given_name(subject.given_names) if subject.given_names else ""
    # The given-names field read as a family name, for records with swapped fields.
    given_as_family = (
        spelling_form(normalise_family_name(subject.given_names).core)
        if subject.given_names
        else ""
    )

    # The deletion families, added last by `_fit` within the key budget.
    deletions: list[tuple[str, Callable[[int], frozenset[str]]]] = []

    def put(name: str, *values: str) -> None:
        found = frozenset(v for v in values if v)
        if found:
            keys[name] = keys.get(name, frozenset()) | found

    if dob is not None:
        year, month, day = dob.split("-")
        if family:
            put(FAMILY_PHON_DOB, label(FAMILY_PHON_DOB, phonetic_code(family), dob))
            # Also of the name as written, then spelt: a typo is made before spelling
            # variants merge ("van Dikj" is "dikj", one swap from "dijk", none from
            # "dyk"; "dij" spelt is "dy", a neighbour of "dyk"). Most of these equal a
            # neighbour of the spelling form; only deletions inside "ij", "ue", ...
            # add keys, and only those of about the name's length are kept.
            written = subject.family_name.core if subject.family_name else family

            def del_dob(positions: int, dob: str = dob) -> frozenset[str]:
                neighbours = deletion_neighbours(family, positions)
                if written != family:
                    neighbours |= {
                        spelt
                        for n in deletion_neighbours(written, positions)
                        if len(family) - 1 <= len(spelt := spelling_form(n)) <= len(family)
                    }
                return frozenset(label(FAMILY_DEL_DOB, n, dob) for n in neighbours)

            deletions.append((FAMILY_DEL_DOB, del_dob))
            assert subject.family_name is not None
            # The whole name too, so "de Vries" meets the "vries" part of "de Vries-Jansen".
            parts = {family} | {
                spelling_form(p) for p in subject.family_name.parts[:MAX_NAME_PARTS]
            }
            put(FAMILY_PART_DOB, *(label(FAMILY_PART_DOB, p, dob) for p in sorted(parts) if p))
        if given:
            put(FAMILY_GIVEN_DOB, label(FAMILY_GIVEN_DOB, given, dob))
            assert subject.given_names is not None
            if " " in subject.given_names:  # several given names: also all of them joined
                put(
                    FAMILY_GIVEN_DOB,
                    label(FAMILY_GIVEN_DOB, spelling_form(subject.given_names), dob),
                )
        names = (family, given, given_as_family)
        put(FAMILY_XNAME_DOB, *(label(FAMILY_XNAME_DOB, n, dob) for n in names if n))
        if family and given:
            put(
                FAMILY_SWAP_DOB,
                *(
                    label(FAMILY_SWAP_DOB, *sorted((family, g)), dob)
                    for g in {given, given_as_family}
                ),
            )
            put(FAMILY_FGI_DOB, label(FAMILY_FGI_DOB, family[0], given, dob))
            put(FAMILY_NAMES_YEAR, label(FAMILY_NAMES_YEAR, family, given, year))
            put(
                FAMILY_NAMES_YM,
                label(FAMILY_NAMES_YM, family, given, year, f"m{month}"),
                label(FAMILY_NAMES_YM, family, given, year, f"d{day}"),
            )
        lo_md, hi_md = sorted((month, day))
        put(FAMILY_DM_SWAP, *(label(FAMILY_DM_SWAP, n, year, lo_md, hi_md) for n in names if n))
        if family and given:
            assert subject.given_names is not None
            put(
                FAMILY_INIT_DOB,
                label(FAMILY_INIT_DOB, family, initials(subject.given_names)[:1], dob),
            )
    if family and given:
        put(FAMILY_NAMES, label(FAMILY_NAMES, family, given))
        # The given name also as written (before short forms): "Hendrrik" is a typo of
        # "Hendrik", whose short form is "henk".
        assert subject.given_names is not None
        given_as_written = spelling_form(subject.given_names.split()[0])

        def names_del(positions: int) -> frozenset[str]:
            return frozenset(
                {label(FAMILY_NAMES_DEL, n, given) for n in deletion_neighbours(family, positions)}
                | {
                    label(FAMILY_NAMES_DEL, family, n)
                    for g in {given, given_as_written}
                    for n in deletion_neighbours(g, positions)
                }
            )

        deletions.append((FAMILY_NAMES_DEL, names_del))
    _fit(keys, deletions)
    return keys


def _fit(
    keys: dict[str, frozenset[str]], deletions: list[tuple[str, Callable[[int], frozenset[str]]]]
) -> None:
    """Add the deletion families, each deleting in as many leading positions as
    `MAX_LINKAGE_KEYS` leaves room for, in order (`del_dob` first: it weighs most).

    Only long names are cut: a typo in their last letters then goes untolerated by that
    family (a double name's parts still have `part_dob`) rather than the signal costing
    over 2 ms of OPRF work. The names themselves (no deletion) always stay. Both sides
    of a pair cut alike, so a typo before both cuts still links.
    """
    for i, (family, build) in enumerate(deletions):
        floor = sum(len(later(0)) for _, later in deletions[i + 1 :])
        room = MAX_LINKAGE_KEYS - sum(len(v) for v in keys.values()) - floor
        for positions in range(MAX_DELETION_NEIGHBOURS, -1, -1):
            found = build(positions)
            if len(found) <= room:
                break
        if found:
            keys[family] = found


def derive_linkage_keys(
    subject: object, *, today: date | None = None, pointer: str = "/subject"
) -> dict[str, frozenset[str]]:
    """Normalise `subject` and build every linkage family it allows; at least one.

    Invalid fields are refused exactly as `derive_match_keys` refuses them; a subject
    with only a family name and given names is accepted (family `names`).
    """
    keys = linkage_keys(normalise_subject(subject, today=today, pointer=pointer))
    if not keys:
        raise InvalidSubject([FieldError(pointer, MSG_NO_KEY)])
    return keys
