"""Dutch linkage forms and the typo-tolerant key families (issue 14 items 1-2).

Each example from the issue must share at least one key between the two spellings;
properties: every linkage form is total and idempotent, and insensitive to case and
diacritics. Look-alike characters are the point of some cases (RUF001 exemption).
"""

# ruff: noqa: RUF001
from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.pseudonyms import InvalidSubject
from gateway.pseudonyms.matchkeys import (
    FAMILY_DEL_DOB,
    FAMILY_DM_SWAP,
    FAMILY_GIVEN_DOB,
    FAMILY_NAME_DOB,
    FAMILY_NAMES,
    FAMILY_NAMES_DEL,
    FAMILY_PART_DOB,
    FAMILY_PHON_DOB,
    FAMILY_SWAP_DOB,
    LINKAGE_FAMILIES,
    MAX_LINKAGE_KEYS,
    MSG_NO_KEY,
    derive_linkage_keys,
    derive_match_keys,
)
from gateway.pseudonyms.normalise import (
    LINKAGE_PREFIXES,
    MAX_DELETION_NEIGHBOURS,
    deletion_neighbours,
    first_given_name,
    fold,
    initials,
    normalise_family_name,
    phonetic_code,
    spelling_form,
)

TODAY = date(2025, 6, 1)
DOB = "2010-04-07"


def keys(
    family: str | None, given: str | None = "Anna", dob: str | None = DOB
) -> dict[str, frozenset[str]]:
    subject = {"familyName": family, "givenNames": given, "dateOfBirth": dob}
    return derive_linkage_keys({k: v for k, v in subject.items() if v is not None}, today=TODAY)


def shared(a: dict[str, frozenset[str]], b: dict[str, frozenset[str]]) -> set[str]:
    return {f for f in a if f in b and a[f] & b[f]}


# --- the examples ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "family"),
    [
        ("van den Berg", "Berg, v.d.", FAMILY_NAME_DOB),
        ("van den Berg", "Vandenberg", FAMILY_PHON_DOB),
        ("Berg, v.d.", "Vandenberg", FAMILY_DEL_DOB),  # spelling form strips glued "van den"
        ("Çelik", "Celik", FAMILY_NAME_DOB),
        ("Müller", "Mueller", FAMILY_DEL_DOB),
        ("Müller", "Muller", FAMILY_NAME_DOB),
        ("Mueller", "Muller", FAMILY_PHON_DOB),
        ("Yılmaz", "Yilmaz", FAMILY_NAME_DOB),
        ("Şahin", "Sahin", FAMILY_NAME_DOB),
        ("Doğan", "Dogan", FAMILY_NAME_DOB),
        ("Straße", "Strasse", FAMILY_NAME_DOB),
        ("Mohammed", "Mohamed", FAMILY_PHON_DOB),
        ("Mohammed", "Muhammad", FAMILY_PHON_DOB),
        ("Jansen", "Janssen", FAMILY_DEL_DOB),  # a doubled letter
        ("Bakker", "Baker", FAMILY_DEL_DOB),  # a dropped letter
        ("Visser", "Vissre", FAMILY_DEL_DOB),  # two letters swapped
        ("Smit", "Smid", FAMILY_DEL_DOB),  # one letter replaced
        ("de Vries-Jansen", "de Vries", FAMILY_PART_DOB),  # only the first part
        ("de Vries-Jansen", "Jansen", FAMILY_PART_DOB),
        ("Jansen-van der Berg", "van der Berg", FAMILY_PART_DOB),
    ],
)
def test_spellings_of_one_family_name_share_a_key(a: str, b: str, family: str) -> None:
    assert family in shared(keys(a), keys(b))


def test_ijsbrand_and_ysbrand_as_given_names() -> None:
    assert FAMILY_GIVEN_DOB in shared(keys("de Boer", "IJsbrand"), keys("Boer", "Ysbrand"))
    assert first_given_name("IJsbrand") == first_given_name("Ysbrand") == "ysbrand"


def test_shortened_and_dropped_given_names() -> None:
    full = keys("Bakker", "Johannes Maria")
    assert FAMILY_GIVEN_DOB in shared(full, keys("Bakker", "Jan"))  # short form
    assert FAMILY_NAMES in shared(full, keys("Bakker", "Johannes"))  # second name dropped


def test_swapped_fields_and_swapped_day_month() -> None:
    assert FAMILY_SWAP_DOB in shared(keys("Anna", "Bakker"), keys("Bakker", "Anna"))
    swapped = keys("Bakker", "Anna", "2010-07-04")
    assert FAMILY_DM_SWAP in shared(keys("Bakker"), swapped)
    assert FAMILY_NAME_DOB not in shared(keys("Bakker"), swapped)


def test_dates_and_bsns_are_never_typo_matched() -> None:
    one_day_off = keys("Bakker", "Anna", "2010-04-08")
    agreeing = shared(keys("Bakker"), one_day_off)
    # None keyed on the full date: the name with the year, or with year and month.
    assert agreeing <= {"names", "names_year", "names_ym", "names_del"}
    other_month_and_day = keys("Bakker", "Anna", "2010-05-08")
    assert "names_ym" not in shared(keys("Bakker"), other_month_and_day)
    a = derive_linkage_keys({"bsn": "123456782"}, today=TODAY)
    b = derive_linkage_keys({"bsn": "111222333"}, today=TODAY)
    assert set(a) == set(b) == {"bsn"} and not shared(a, b)


def test_several_given_names_also_meet_their_joined_form() -> None:
    split = derive_linkage_keys(
        {"familyName": "Dent", "givenNames": "Kate Lin", "dateOfBirth": DOB}, today=TODAY
    )
    joined = derive_linkage_keys(
        {"familyName": "Dent", "givenNames": "Katelin", "dateOfBirth": DOB}, today=TODAY
    )
    other = derive_linkage_keys(
        {"familyName": "Dent", "givenNames": "Kate", "dateOfBirth": DOB}, today=TODAY
    )
    assert FAMILY_GIVEN_DOB in shared(split, joined)
    assert FAMILY_GIVEN_DOB in shared(split, other)
    assert FAMILY_GIVEN_DOB not in shared(joined, other)


def test_v1_keys_are_unchanged() -> None:
    subject = {
        "bsn": "123456782",
        "familyName": "van der Berg",
        "givenNames": "Anna",
        "dateOfBirth": DOB,
    }
    linkage = derive_linkage_keys(subject, today=TODAY)
    for family, key in derive_match_keys(subject, today=TODAY).items():
        assert linkage[family] == frozenset({key})


def test_records_without_some_fields_get_the_families_they_allow() -> None:
    assert set(keys(None)) == {FAMILY_GIVEN_DOB, "xname_dob", FAMILY_DM_SWAP}
    assert set(keys("Bakker", dob=None)) == {FAMILY_NAMES, "names_del"}
    assert set(keys("Bakker", given=None)) == {
        FAMILY_NAME_DOB,
        FAMILY_PHON_DOB,
        FAMILY_DEL_DOB,
        FAMILY_PART_DOB,
        FAMILY_DM_SWAP,
        "xname_dob",
    }
    with pytest.raises(InvalidSubject) as caught:
        keys("Bakker", given=None, dob=None)
    assert caught.value.errors[0].detail == MSG_NO_KEY


def test_deletion_neighbours_are_bounded() -> None:
    long_name = "a" * 5 + "bcdefghijklmnopqrstuvwxyz"
    assert len(deletion_neighbours(long_name)) <= MAX_DELETION_NEIGHBOURS + 1
    assert deletion_neighbours("li") == frozenset({"li"})
    subject = {"familyName": long_name, "givenNames": "Anna Maria", "dateOfBirth": DOB}
    # del_dob and names_del (family and given) are bounded, the rest one or two each
    bound = 3 * (MAX_DELETION_NEIGHBOURS + 1) + 16
    assert sum(len(v) for v in derive_linkage_keys(subject, today=TODAY).values()) <= bound


def count(found: dict[str, frozenset[str]]) -> int:
    return sum(len(v) for v in found.values())


def test_long_names_give_way_in_the_deletion_families_only() -> None:
    long_family, long_given = "Vermeulen-Groenewegen", "Hendrikus Alexander"
    found = keys(long_family, long_given)
    without_date = keys(long_family, long_given, None)
    assert count(found) == MAX_LINKAGE_KEYS
    assert len(without_date[FAMILY_NAMES_DEL]) > len(found[FAMILY_NAMES_DEL])
    assert found[FAMILY_NAMES_DEL] < without_date[FAMILY_NAMES_DEL]
    # a typo early in a long name still links, with and without a date of birth
    assert FAMILY_DEL_DOB in shared(found, keys("Vremeulen-Groenewegen", long_given))
    ordinary = keys("Vermeulen", "Hendrikus")
    assert count(ordinary) <= MAX_LINKAGE_KEYS
    assert shared(ordinary, keys("Vremeulen", "Hendrikus", None)) == {FAMILY_NAMES_DEL}
    many_parts = "-".join(f"{letter * 4}" for letter in "abcdefghijkl")
    assert count(keys(many_parts, "Anna Maria Petra")) <= MAX_LINKAGE_KEYS
    # ordinary names keep every deletion
    assert len(keys("Jansen")[FAMILY_DEL_DOB]) == len("jansen") + 1
    assert shared(keys("Jansen"), keys("Jansne", dob=None)) == {FAMILY_NAMES_DEL}


@given(
    st.text(alphabet="abcdeijklmnorstuvyz -", min_size=1, max_size=60),
    st.text(alphabet="abeijklmnorstuy ", min_size=1, max_size=60),
)
def test_no_signal_yields_more_than_the_key_budget(family: str, given: str) -> None:
    try:
        found = keys(family, given)
        without_date = keys(family, given, None)
    except InvalidSubject:
        return
    assert count(found) <= MAX_LINKAGE_KEYS
    assert found.get(FAMILY_NAMES_DEL, frozenset()) <= without_date.get(
        FAMILY_NAMES_DEL, frozenset()
    )


def test_prefix_table_and_initials() -> None:
    assert {"van der", "in t", "uijt te de", "von dem", "d", "el"} <= LINKAGE_PREFIXES
    assert initials("Jan Peter") == initials("J.P.") == "jp"
    assert normalise_family_name("de Vries-Jansen").parts == ("vries", "jansen")
    assert normalise_family_name("Jansen").parts == ()


def test_family_names_stay_short_enough_to_store() -> None:
    assert all(len(f) <= 32 for f in LINKAGE_FAMILIES)
    assert len(",".join(LINKAGE_FAMILIES)) <= 128


# --- properties ---------------------------------------------------------------------------

NAMEISH = st.text(max_size=40) | st.sampled_from(
    ["Müller", "Mueller", "IJsbrand", "Ysbrand", "Çelik", "Vandenberg", "ß", "ĳ", "İ", "ŉ", "ǅ"]
)


@given(NAMEISH)
def test_linkage_forms_are_total_and_idempotent(raw: str) -> None:
    form = spelling_form(raw)
    assert spelling_form(form) == form
    assert form == "" or form.isalpha()
    code = phonetic_code(raw)
    assert len(code) <= 8
    assert first_given_name(first_given_name(raw)) == first_given_name(raw)
    assert len(deletion_neighbours(form)) <= MAX_DELETION_NEIGHBOURS + 1


@given(NAMEISH)
def test_linkage_forms_ignore_case_and_diacritics(raw: str) -> None:
    for variant in (raw.upper(), raw.lower(), fold(raw)):
        assert spelling_form(variant) == spelling_form(raw)
        assert phonetic_code(variant) == phonetic_code(raw)


@given(
    st.dictionaries(
        st.sampled_from(["bsn", "familyName", "givenNames", "dateOfBirth"]), st.text(max_size=30)
    )
)
def test_any_subject_gives_linkage_keys_or_a_clean_refusal(subject: dict[str, object]) -> None:
    try:
        found = derive_linkage_keys(subject, today=TODAY)
    except InvalidSubject:
        return
    assert found and set(found) <= set(LINKAGE_FAMILIES)
    for family, values in found.items():
        assert values and all(v.startswith(f"ketenpoort:v1:{family}:") for v in values)


def test_rotation_covers_every_family() -> None:
    """k'·k⁻¹ moves each element of each family, multi-valued ones included."""
    from gateway.crypto import oprf
    from gateway.pseudonyms import Pseudonymiser

    old = Pseudonymiser(oprf.random_scalar(), kid="old")
    new = Pseudonymiser(oprf.random_scalar(), kid="new")
    subject = {"bsn": "123456782", "familyName": "de Vries-Jansen", "givenNames": "Anna"}
    subject["dateOfBirth"] = DOB
    rotation = old.rotation_to(new)
    before = old.linkage_pseudonyms(subject, today=TODAY)
    moved = {f: frozenset(rotation.apply_all(v)) for f, v in before.items()}
    assert moved == new.linkage_pseudonyms(subject, today=TODAY)
    assert set(moved) == set(LINKAGE_FAMILIES)


def test_one_given_name_gives_one_given_dob_key() -> None:
    """A short form ("Hendrik" is keyed as "henk") is not a second given name."""
    keys = derive_linkage_keys(
        {"familyName": "Dent", "givenNames": "Hendrik", "dateOfBirth": DOB}, today=TODAY
    )
    assert len(keys[FAMILY_GIVEN_DOB]) == 1
