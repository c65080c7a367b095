"""Normalisation rules, each with real Dutch cases, and its properties.

Look-alike characters (fullwidth digits, typographic apostrophes, dotless i) are the
point of several cases here, hence the file-wide RUF001 exemption.

Properties (hypothesis): every normaliser is idempotent on its own output, and for
any Unicode string it either returns or raises `InvalidSubject` whose messages come
from a fixed set, so an input can never leak into an error.
"""

# ruff: noqa: RUF001
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.errors import InvalidInput
from gateway.pseudonyms import InvalidSubject
from gateway.pseudonyms.normalise import (
    MAX_NAME_LENGTH,
    MESSAGES,
    MSG_BSN_CHARACTERS,
    MSG_BSN_INVALID,
    MSG_BSN_LENGTH,
    MSG_DATE_CALENDAR,
    MSG_DATE_FORMAT,
    MSG_DATE_FUTURE,
    MSG_DATE_TOO_OLD,
    MSG_EMPTY,
    MSG_NO_LETTERS,
    MSG_NOT_STRING,
    MSG_TOO_LONG,
    FamilyName,
    fold,
    latest_today,
    normalise_bsn,
    normalise_date_of_birth,
    normalise_family_name,
    normalise_given_names,
)

TODAY = date(2025, 6, 1)


def refused(call: object, *args: object, **kwargs: object) -> tuple[str, str]:
    """Run a normaliser that must refuse; return its (pointer, detail)."""
    with pytest.raises(InvalidSubject) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert len(caught.value.errors) == 1
    error = caught.value.errors[0]
    return error.pointer, error.detail


# --- BSN -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123456782", "123456782"),  # the usual test BSN
        ("1234.56.782", "123456782"),  # printed format on documents
        ("1234 56 782", "123456782"),
        ("123-456-782", "123456782"),
        (" 123456782 ", "123456782"),
        ("１２３４５６７８２", "123456782"),  # fullwidth digits (NFKC)
        ("12345672", "012345672"),  # an old 8-digit SoFi number gets its leading zero
        ("111222333", "111222333"),
    ],
)
def test_valid_bsn(raw: str, expected: str) -> None:
    assert normalise_bsn(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("123456789", MSG_BSN_INVALID),  # fails the 11-test
        ("123456783", MSG_BSN_INVALID),  # one digit off
        ("000000000", MSG_BSN_INVALID),
        ("1234567", MSG_BSN_LENGTH),  # stdnum would pad any short number; we do not
        ("1234567820", MSG_BSN_LENGTH),
        ("12345678a", MSG_BSN_CHARACTERS),
        ("١٢٣٤٥٦٧٨٢", MSG_BSN_CHARACTERS),  # Arabic-Indic digits are not accepted
        ("+123456782", MSG_BSN_CHARACTERS),
        ("", MSG_EMPTY),
        ("   ", MSG_EMPTY),
        ("1" * 40, MSG_TOO_LONG),
    ],
)
def test_invalid_bsn(raw: str, message: str) -> None:
    assert refused(normalise_bsn, raw) == ("/subject/bsn", message)


def test_bsn_must_be_a_string() -> None:
    assert refused(normalise_bsn, 123456782) == ("/subject/bsn", MSG_NOT_STRING)


# --- family names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "prefix", "core"),
    [
        ("Van der Berg", "van der", "berg"),
        ("van den Berg", "van den", "berg"),
        ("van de Kamp", "van de", "kamp"),
        ("de Vries", "de", "vries"),
        ("De Jong", "de", "jong"),
        ("ter Horst", "ter", "horst"),
        ("ten Cate", "ten", "cate"),
        ("te Riele", "te", "riele"),
        ("in 't Veld", "in 't", "veld"),
        ("In’t Veld", "in 't", "veld"),  # typographic apostrophe, no space
        ("'t Hart", "'t", "hart"),
        ("van 't Hof", "van 't", "hof"),
        ("op de Beek", "op de", "beek"),
        ("uit den Bogaard", "uit den", "bogaard"),
        ("van der Heijden", "van der", "heijden"),
        ("Berg, van den", "van den", "berg"),  # register order, prefix after a comma
        ("v.d. Berg", "v.d.", "berg"),  # abbreviated in many partner systems
        ("v/d Berg", "v.d.", "berg"),
        ("de Vries-Jansen", "de", "vriesjansen"),  # double name: kept whole
        ("Jansen-van der Berg", "", "jansenvanderberg"),  # only a leading prefix is split
        ("Van", "", "van"),  # a name that is only a prefix word stays a name
        ("El Amrani", "", "elamrani"),  # not a Dutch tussenvoegsel
        ("Çelik", "", "celik"),
        ("Yılmaz", "", "yilmaz"),  # Turkish dotless i
        ("Şahin", "", "sahin"),
        ("Brontë", "", "bronte"),
        ("Kühn", "", "kuhn"),
        ("Søndergaard", "", "sondergaard"),
        ("Straße", "", "strasse"),
        ("ĲSSELSTEIJN", "", "ijsselsteijn"),  # the Dutch ij ligature
        ("O'Neill", "", "oneill"),
        ("Иванова", "", "иванова"),  # other scripts are kept, not transliterated
    ],
)
def test_family_name(raw: str, prefix: str, core: str) -> None:
    assert normalise_family_name(raw) == FamilyName(prefix, core)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Van der Berg", "van den Berg"),  # decided: prefixes do not count for matching
        ("Van der Berg", "Berg"),
        ("v.d. Berg", "van der Berg"),
        ("Çelik", "Celik"),
        ("Yılmaz", "YILMAZ"),
        ("de Vries-Jansen", "De Vries - Jansen"),
        ("de Vries-Jansen", "de Vries Jansen"),
        ("in 't Veld", "Veld"),
        ("Mc Donald", "McDonald"),
    ],
)
def test_same_core_name(a: str, b: str) -> None:
    assert normalise_family_name(a).core == normalise_family_name(b).core


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("de Vries-Jansen", "de Vries"),  # a double name is not its first part
        ("Vandenberg", "van den Berg"),  # written as one word, the prefix is part of the name
        ("Jansen", "Janssen"),  # spelling variants are for later key families
    ],
)
def test_different_core_name(a: str, b: str) -> None:
    assert normalise_family_name(a).core != normalise_family_name(b).core


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", MSG_EMPTY),
        ("  \t ", MSG_EMPTY),
        ("123", MSG_NO_LETTERS),
        ("-- ' .", MSG_NO_LETTERS),
        ("\u0301\u0308", MSG_NO_LETTERS),  # only combining marks
        ("a" * (MAX_NAME_LENGTH + 1), MSG_TOO_LONG),
    ],
)
def test_invalid_family_name(raw: str, message: str) -> None:
    assert refused(normalise_family_name, raw) == ("/subject/familyName", message)


def test_family_name_must_be_a_string() -> None:
    assert refused(normalise_family_name, ["de", "Vries"]) == (
        "/subject/familyName",
        MSG_NOT_STRING,
    )


def test_str_of_a_family_name_normalises_to_itself() -> None:
    name = normalise_family_name("In ’t Veld")
    assert str(name) == "in 't veld"
    assert normalise_family_name(str(name)) == name


# --- given names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jan-Peter", "jan peter"),
        ("Zoë", "zoe"),
        ("  Anna   Maria ", "anna maria"),
        ("Ömer Faruk", "omer faruk"),
        ("J.P.", "j p"),
    ],
)
def test_given_names(raw: str, expected: str) -> None:
    assert normalise_given_names(raw) == expected


def test_invalid_given_names() -> None:
    assert refused(normalise_given_names, "??") == ("/subject/givenNames", MSG_NO_LETTERS)


# --- dates of birth -------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["2008-02-29", "1990-12-31", "2025-06-01", "1905-06-01"])
def test_valid_date(raw: str) -> None:
    assert normalise_date_of_birth(raw, today=TODAY) == raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("2008-2-9", MSG_DATE_FORMAT),
        ("20080229", MSG_DATE_FORMAT),  # fromisoformat would take it; we do not
        ("29-02-2008", MSG_DATE_FORMAT),  # Dutch order
        ("2008-02-29T00:00:00", MSG_DATE_FORMAT),
        ("2008-02-29\n", MSG_DATE_FORMAT),
        ("２００８-０２-２９", MSG_DATE_FORMAT),  # fullwidth digits
        ("2008-W09-5", MSG_DATE_FORMAT),
        ("", MSG_DATE_FORMAT),
        ("2007-02-29", MSG_DATE_CALENDAR),
        ("2008-13-01", MSG_DATE_CALENDAR),
        ("0000-01-01", MSG_DATE_CALENDAR),
        ("2025-06-02", MSG_DATE_FUTURE),
        ("2100-01-01", MSG_DATE_FUTURE),
        ("1905-05-31", MSG_DATE_TOO_OLD),  # one day more than 120 years
    ],
)
def test_invalid_date(raw: str, message: str) -> None:
    got = refused(normalise_date_of_birth, raw, today=TODAY)
    assert got == ("/subject/dateOfBirth", message)


def test_date_must_be_a_string() -> None:
    got = refused(normalise_date_of_birth, 20080229, today=TODAY)
    assert got == ("/subject/dateOfBirth", MSG_NOT_STRING)


def test_120_years_counted_from_29_february() -> None:
    leap_day = date(2020, 2, 29)  # 1900 had no 29 February: the limit is 1 March 1900
    assert normalise_date_of_birth("1900-03-01", today=leap_day) == "1900-03-01"
    assert refused(normalise_date_of_birth, "1900-02-28", today=leap_day)[1] == MSG_DATE_TOO_OLD


def test_a_birth_today_anywhere_is_not_in_the_future() -> None:
    assert latest_today() >= datetime.now(UTC).date()
    assert normalise_date_of_birth(latest_today().isoformat())


def test_errors_are_the_api_400_type() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_bsn("123456789")
    assert caught.value.status == 400
    assert caught.value.slug == "invalid-subject"


# --- properties ------------------------------------------------------------------------

#: Name-like words, to reach the prefix logic more often than random text would.
NAME_WORDS = st.sampled_from(
    [
        "van", "Van", "de", "der", "den", "in", "'t", "’t", "op", "uit", "ter", "te",
        "v.d.", "Berg", "Vries-Jansen", "Çelik", "Yılmaz", "ß", "ĳ", "İ", ",", "-", "ǅ",
        "ﬁ", "Ⅻ", "\u0345", "ΐ", "ẞ", "\ufb03", "ŉ",
    ]
)  # fmt: skip
NAME_LIKE = st.lists(NAME_WORDS, max_size=6).map(" ".join)


def _refusal_is_clean(exc: InvalidSubject, pointer: str) -> None:
    assert exc.errors, "a refusal names the field"
    for error in exc.errors:
        assert error.pointer == pointer
        assert error.detail in MESSAGES


@given(st.text() | NAME_LIKE)
@example("Berg, van der")
@example("van der")
@example("'t t")
def test_family_name_total_and_idempotent(raw: str) -> None:
    try:
        name = normalise_family_name(raw)
    except InvalidSubject as exc:
        _refusal_is_clean(exc, "/subject/familyName")
        return
    assert name.core
    assert normalise_family_name(str(name)) == name
    assert normalise_family_name(name.core).core == name.core


@given(st.text() | NAME_LIKE)
def test_given_names_total_and_idempotent(raw: str) -> None:
    try:
        names = normalise_given_names(raw)
    except InvalidSubject as exc:
        _refusal_is_clean(exc, "/subject/givenNames")
        return
    assert normalise_given_names(names) == names


@given(st.text())
def test_fold_is_idempotent(raw: str) -> None:
    assert fold(fold(raw)) == fold(raw)


BSN_LIKE = st.text(alphabet="0123456789 .-", max_size=14)


@given(st.text() | BSN_LIKE)
@example("123456782")
def test_bsn_total_and_idempotent(raw: str) -> None:
    try:
        bsn = normalise_bsn(raw)
    except InvalidSubject as exc:
        _refusal_is_clean(exc, "/subject/bsn")
        return
    assert len(bsn) == 9 and bsn.isascii() and bsn.isdigit()
    assert normalise_bsn(bsn) == bsn


@given(st.text() | st.dates().map(date.isoformat))
def test_date_total_and_idempotent(raw: str) -> None:
    try:
        day = normalise_date_of_birth(raw, today=TODAY)
    except InvalidSubject as exc:
        _refusal_is_clean(exc, "/subject/dateOfBirth")
        return
    assert normalise_date_of_birth(day, today=TODAY) == day
