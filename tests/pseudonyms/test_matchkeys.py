"""Match keys: exact labels, which keys a subject yields, and 400s that never leak."""

from __future__ import annotations

import json
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.pseudonyms import InvalidSubject, derive_match_keys, normalise_subject
from gateway.pseudonyms.matchkeys import MSG_NO_KEY, MSG_NOT_OBJECT
from gateway.pseudonyms.normalise import (
    MESSAGES,
    MSG_BSN_INVALID,
    MSG_DATE_FORMAT,
    MSG_DATE_FUTURE,
    MSG_NO_LETTERS,
)

TODAY = date(2025, 6, 1)
FULL = {
    "bsn": "1234.56.782",
    "familyName": "van der Berg",
    "givenNames": "Anna Maria",
    "dateOfBirth": "2008-02-29",
}


def errors_of(subject: object) -> list[tuple[str, str]]:
    with pytest.raises(InvalidSubject) as caught:
        derive_match_keys(subject, today=TODAY)
    return [(e.pointer, e.detail) for e in caught.value.errors]


def test_full_subject_yields_both_keys() -> None:
    assert derive_match_keys(FULL, today=TODAY) == {
        "bsn": "ketenpoort:v1:bsn:123456782",
        "name_dob": "ketenpoort:v1:name_dob:berg:2008-02-29",
    }


def test_bsn_alone() -> None:
    assert derive_match_keys({"bsn": "123456782"}, today=TODAY) == {
        "bsn": "ketenpoort:v1:bsn:123456782"
    }


def test_name_and_date_without_bsn() -> None:
    subject = {"familyName": "Çelik", "dateOfBirth": "2010-01-31"}
    assert derive_match_keys(subject, today=TODAY) == {
        "name_dob": "ketenpoort:v1:name_dob:celik:2010-01-31"
    }


def test_prefix_spelling_does_not_change_the_key() -> None:
    a = derive_match_keys({"familyName": "Van der Berg", "dateOfBirth": "2008-02-29"})
    b = derive_match_keys({"familyName": "Berg, van den", "dateOfBirth": "2008-02-29"})
    assert a == b


def test_given_names_do_not_enter_v1_keys_but_are_normalised() -> None:
    without = derive_match_keys({k: v for k, v in FULL.items() if k != "givenNames"})
    assert derive_match_keys(FULL) == without
    assert normalise_subject(FULL, today=TODAY).given_names == "anna maria"


def test_null_fields_count_as_absent() -> None:
    subject = {"bsn": "123456782", "familyName": None, "dateOfBirth": None}
    assert set(derive_match_keys(subject, today=TODAY)) == {"bsn"}


@pytest.mark.parametrize(
    "subject",
    [
        {},
        {"familyName": "de Vries"},  # a name alone is not enough
        {"dateOfBirth": "2008-02-29"},
        {"givenNames": "Anna"},
        {"bsn": None},
    ],
)
def test_no_derivable_key_is_refused(subject: dict[str, object]) -> None:
    assert errors_of(subject) == [("/subject", MSG_NO_KEY)]


@pytest.mark.parametrize("subject", [None, "123456782", ["123456782"], 42])
def test_subject_must_be_an_object(subject: object) -> None:
    assert errors_of(subject) == [("/subject", MSG_NOT_OBJECT)]


def test_every_invalid_field_is_reported_at_once() -> None:
    subject = {
        "bsn": "123456789",
        "familyName": "!!!",
        "givenNames": "Anna",
        "dateOfBirth": "31-12-2008",
    }
    assert errors_of(subject) == [
        ("/subject/bsn", MSG_BSN_INVALID),
        ("/subject/familyName", MSG_NO_LETTERS),
        ("/subject/dateOfBirth", MSG_DATE_FORMAT),
    ]


def test_an_invalid_field_is_refused_even_when_another_key_is_valid() -> None:
    subject = {"bsn": "123456782", "familyName": "Jansen", "dateOfBirth": "2030-01-01"}
    assert errors_of(subject) == [("/subject/dateOfBirth", MSG_DATE_FUTURE)]


def test_pointer_prefix_is_configurable() -> None:
    with pytest.raises(InvalidSubject) as caught:
        derive_match_keys({"bsn": "123456789"}, pointer="/subjects/2")
    assert caught.value.errors[0].pointer == "/subjects/2/bsn"


def test_problem_body_names_fields_and_never_the_values() -> None:
    subject = {"bsn": "123456789", "familyName": "§§§", "dateOfBirth": "2008-02-30"}
    with pytest.raises(InvalidSubject) as caught:
        derive_match_keys(subject, today=TODAY)
    exc = caught.value
    body = exc.body("https://gateway.example", "/v1/signals")
    assert body["type"] == "https://gateway.example/problems/invalid-subject"
    assert body["status"] == 400
    assert [e["pointer"] for e in body["errors"]] == [
        "/subject/bsn",
        "/subject/familyName",
        "/subject/dateOfBirth",
    ]
    rendered = json.dumps(body) + str(exc) + repr(exc) + repr(exc.errors)
    for value in subject.values():
        assert value not in rendered
    assert exc.__cause__ is None and exc.__context__ is None


@given(
    st.dictionaries(
        st.sampled_from(["bsn", "familyName", "givenNames", "dateOfBirth", "other"]),
        st.none() | st.text(max_size=40) | st.integers() | st.booleans(),
    )
)
def test_any_subject_gives_keys_or_a_clean_refusal(subject: dict[str, object]) -> None:
    try:
        keys = derive_match_keys(subject, today=TODAY)
    except InvalidSubject as exc:
        for error in exc.errors:
            assert error.pointer.startswith("/subject")
            assert error.detail in MESSAGES | {MSG_NO_KEY, MSG_NOT_OBJECT}
        return
    assert keys and set(keys) <= {"bsn", "name_dob"}
    for family, key in keys.items():
        assert key.startswith(f"ketenpoort:v1:{family}:")
