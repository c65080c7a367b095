"""Normalisation of subject identifiers before they become match keys.

Two partners who write down the same person must produce the same match key, so
each identifier is reduced to a canonical form; anything that cannot be reduced is
refused with `InvalidSubject` (a 400 naming the field, never quoting the value).
The rules and the decisions behind them are listed in the README ("Pseudonyms").

- BSN: separators (spaces, dots, dashes) removed, 8 or 9 ASCII digits (an 8-digit
  number is an old SoFi number and gets its leading zero, as python-stdnum does),
  the 11-test by `stdnum.nl.bsn`.
- Names: Unicode NFKD, case-folded, every combining mark dropped ("Çelik" → "celik"),
  letters that do not decompose transliterated ("ø" → "o", "ß" → "ss"), and only
  letters kept. For a family name, a leading Dutch prefix (tussenvoegsel: "van der",
  "de", "in 't", …) is split off and kept apart; the rest, with spaces, hyphens and
  apostrophes removed, is the core name that match keys use.
- Dates: strictly `YYYY-MM-DD`, a real calendar date, not in the future and not more
  than 120 years ago.

Every function is idempotent on its own output and raises nothing but
`InvalidSubject`, for any Unicode string (property-tested).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from stdnum.exceptions import ValidationError as StdnumValidationError
from stdnum.nl import bsn as stdnum_bsn

from gateway.pseudonyms.errors import field_error

#: Longest raw value accepted for a name field; longer input is refused, not cut.
MAX_NAME_LENGTH = 200
#: Longest raw BSN accepted (9 digits plus generous separators and spaces).
MAX_BSN_LENGTH = 32
#: Oldest accepted date of birth, in years before today.
MAX_AGE_YEARS = 120

# Fixed messages: the only text an error carries (tests check that no other appears).
MSG_NOT_STRING = "must be a string"
MSG_EMPTY = "must not be empty; leave the field out when it is unknown"
MSG_TOO_LONG = "is too long"
MSG_BSN_CHARACTERS = "must consist of digits (spaces, dots and dashes are allowed)"
MSG_BSN_LENGTH = "must have 9 digits (or 8 for a number with a leading zero)"
MSG_BSN_INVALID = "is not a valid BSN (it fails the 11-test)"
MSG_NO_LETTERS = "must contain letters"
MSG_DATE_FORMAT = "must be a date written as YYYY-MM-DD"
MSG_DATE_CALENDAR = "is not a date in the calendar"
MSG_DATE_FUTURE = "must not be in the future"
MSG_DATE_TOO_OLD = f"must not be more than {MAX_AGE_YEARS} years ago"

MESSAGES = frozenset(
    {
        MSG_NOT_STRING,
        MSG_EMPTY,
        MSG_TOO_LONG,
        MSG_BSN_CHARACTERS,
        MSG_BSN_LENGTH,
        MSG_BSN_INVALID,
        MSG_NO_LETTERS,
        MSG_DATE_FORMAT,
        MSG_DATE_CALENDAR,
        MSG_DATE_FUTURE,
        MSG_DATE_TOO_OLD,
    }
)

# --- folding -------------------------------------------------------------------------

#: Letters that NFKD does not decompose into a base letter plus marks.
_TRANSLITERATE = str.maketrans(
    {
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "\u0131": "i",  # dotless i
        "ħ": "h",
        "ŧ": "t",
        "ŋ": "n",
        "\u017f": "s",  # long s
        "ß": "ss",
    }
)
#: Apostrophe look-alikes (acute accent, quotation marks, primes, modifier letters,
#: fullwidth) for "in 't", "'s", "d'": all become separators.
_APOSTROPHES = "'`\u00b4\u2018\u2019\u201a\u201b\u2032\u02b9\u02bb\u02bc\u02bd\u02c8\uff07"
#: Dash look-alikes: hyphens, figure/en/em dashes, minus sign, small and fullwidth.
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_SEPARATORS = re.compile("[\\s,." + re.escape(_APOSTROPHES + _DASHES) + "/]+")


def fold(text: str) -> str:
    """NFKD, case-fold, drop combining marks, transliterate; repeated to a fixed point.

    Case-folding can yield characters that NFKD decomposes further (and the other
    way round), so the steps repeat until nothing changes; that makes `fold`
    idempotent by construction. Four rounds always suffice in practice; the loop is
    bounded so no input can make it spin.
    """
    for _ in range(8):
        folded = unicodedata.normalize("NFKD", text).casefold()
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in folded if not unicodedata.category(c).startswith("M"))
        folded = folded.translate(_TRANSLITERATE)
        if folded == text:
            break
        text = folded
    return text


def _letters(token: str) -> str:
    return "".join(c for c in token if c.isalpha())


def _tokens(folded: str) -> list[str]:
    """Words of a folded name: split on spaces, hyphens, apostrophes, dots, commas."""
    return [word for word in (_letters(t) for t in _SEPARATORS.split(folded)) if word]


# --- Dutch family-name prefixes ------------------------------------------------------

#: Prefixes (tussenvoegsels) as letter-only words, as they appear after `_tokens`:
#: "'t" is "t", "d'" is "d", "v.d." is "vd". Dutch ones after the BRP's table of
#: voorvoegsels, plus the foreign ones common in Dutch registers.
PREFIXES: frozenset[str] = frozenset(
    {
        # Dutch
        "van", "de", "der", "den", "het", "t", "te", "ter", "ten", "s",
        "van de", "van der", "van den", "van het", "van t", "van ter", "van ten",
        "van de l", "van den t",
        "in", "in de", "in den", "in der", "in het", "in t",
        "op", "op de", "op den", "op der", "op het", "op t", "op ten",
        "uit", "uit de", "uit den", "uit het", "uit t", "uit te de",
        "uijt", "uijt de", "uijt den", "uijt te de",
        "aan", "aan de", "aan den", "aan der", "aan het", "aan t",
        "bij", "bij de", "bij den", "bij het", "bij t",
        "onder", "onder de", "onder den", "onder het", "onder t",
        "over", "over de", "over den", "over het", "over t",
        "voor", "voor de", "voor den", "voor het", "voor t", "voor in t",
        "tot", "boven d", "d", "l",
        # abbreviations in partner systems: "v.", "v.d.", "v/d", "v. d."
        "v", "vd", "v d", "v de", "v den", "v der",
        # foreign prefixes common in Dutch registers
        "von", "von der", "von dem", "von den", "vom", "zu", "zum", "zur", "von und zu",
        "le", "la", "les", "du", "des", "di", "da", "del", "della", "dos", "das", "do", "dal",
    }
)  # fmt: skip
_MAX_PREFIX_WORDS = max(len(p.split()) for p in PREFIXES)


@dataclass(frozen=True)
class FamilyName:
    """A normalised family name: the split-off prefix and the core name.

    Match keys use `core` only (see the README for why "Van der Berg" and
    "van den Berg" both give "berg"); `prefix` is kept for display and for later
    key families that may want it.
    """

    prefix: str
    core: str

    def __str__(self) -> str:
        return f"{self.prefix} {self.core}" if self.prefix else self.core


#: How a prefix is written back for display: "in t" is shown as "in 't", "v d" as "v.d.".
_DISPLAY_WORD = {"t": "'t", "s": "'s", "d": "d'", "l": "l'"}
_DISPLAY_PREFIX = {
    "v": "v.",
    "vd": "v.d.",
    "v d": "v.d.",
    "v de": "v. de",
    "v den": "v. den",
    "v der": "v. der",
}


def _display(prefix: str) -> str:
    shown = _DISPLAY_PREFIX.get(prefix)
    return shown or " ".join(_DISPLAY_WORD.get(w, w) for w in prefix.split())


def _split_prefix(words: list[str]) -> tuple[str, list[str]]:
    """The longest leading run of words that is a known prefix, leaving ≥ 1 word.

    Returns the prefix in display form ("in 't", "d'") and the remaining words.
    """
    for length in range(min(_MAX_PREFIX_WORDS, len(words) - 1), 0, -1):
        candidate = " ".join(words[:length])
        if candidate in PREFIXES:
            return _display(candidate), words[length:]
    return "", words


def _checked_text(value: object, pointer: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise field_error(pointer, MSG_NOT_STRING)
    if len(value) > max_length:
        raise field_error(pointer, MSG_TOO_LONG)
    if not value.strip():
        raise field_error(pointer, MSG_EMPTY)
    return value


def normalise_family_name(value: object, *, pointer: str = "/subject/familyName") -> FamilyName:
    """Split a family name into its Dutch prefix and a letters-only core.

    "Van der Berg" → ("van der", "berg"); "de Vries-Jansen" → ("de", "vriesjansen");
    "Berg, van der" (register order) → ("van der", "berg"); "Çelik" → ("", "celik").
    """
    text = _checked_text(value, pointer, MAX_NAME_LENGTH)
    folded = fold(text)
    head, comma, tail = folded.partition(",")
    words = _tokens(folded)
    if comma:
        head_words, tail_words = _tokens(head), _tokens(tail)
        if head_words and " ".join(tail_words) in PREFIXES:
            words = tail_words + head_words  # "Berg, van der" is "van der Berg"
    if not words:
        raise field_error(pointer, MSG_NO_LETTERS)
    prefix, rest = _split_prefix(words)
    return FamilyName(prefix=prefix, core="".join(rest))


def normalise_given_names(value: object, *, pointer: str = "/subject/givenNames") -> str:
    """Given names folded like family names, words kept apart by single spaces."""
    text = _checked_text(value, pointer, MAX_NAME_LENGTH)
    words = _tokens(fold(text))
    if not words:
        raise field_error(pointer, MSG_NO_LETTERS)
    return " ".join(words)


# --- BSN -----------------------------------------------------------------------------

_BSN_SEPARATORS = re.compile("[\\s." + re.escape(_DASHES) + "]+")


def normalise_bsn(value: object, *, pointer: str = "/subject/bsn") -> str:
    """Nine ASCII digits that pass the 11-test; "1234.56.782" → "123456782"."""
    text = _checked_text(value, pointer, MAX_BSN_LENGTH)
    digits = _BSN_SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    if not (digits.isascii() and digits.isdigit()):
        raise field_error(pointer, MSG_BSN_CHARACTERS)
    if len(digits) not in (8, 9):
        raise field_error(pointer, MSG_BSN_LENGTH)
    try:
        number: str = stdnum_bsn.validate(digits)
    except StdnumValidationError:
        raise field_error(pointer, MSG_BSN_INVALID) from None
    return number


# --- dates ---------------------------------------------------------------------------

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def latest_today() -> date:
    """Today's date in the time zone that is furthest ahead (UTC+14).

    A date of birth is "in the future" only if it is in the future everywhere, so a
    child registered just after midnight in Amsterdam is never refused, and no time
    zone database is needed.
    """
    return (datetime.now(UTC) + timedelta(hours=14)).date()


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return date(day.year - years, 3, 1)


def normalise_date_of_birth(
    value: object, *, today: date | None = None, pointer: str = "/subject/dateOfBirth"
) -> str:
    """A strict ISO `YYYY-MM-DD` date, not in the future, at most 120 years ago."""
    if not isinstance(value, str):
        raise field_error(pointer, MSG_NOT_STRING)
    if not _ISO_DATE.fullmatch(value):
        raise field_error(pointer, MSG_DATE_FORMAT)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise field_error(pointer, MSG_DATE_CALENDAR) from None
    today = today or latest_today()
    if day > today:
        raise field_error(pointer, MSG_DATE_FUTURE)
    if day < years_before(today, MAX_AGE_YEARS):
        raise field_error(pointer, MSG_DATE_TOO_OLD)
    return day.isoformat()
