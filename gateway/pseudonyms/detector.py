"""One detector for personal data in caller-chosen strings (security finding 8).

Partners choose some strings we store or log: a signal's `reference`, the
`Idempotency-Key`, an `X-Request-Id`, a `traceparent`. None of them may carry a BSN, a
date of birth or the subject's name, because whatever is stored as given would rest in
the database, the audit log and its exports. Ordinary variants must not slip through,
so the text is looked at in several shapes:

- NFKC first (full-width digits, ligatures and the like become plain characters);
- BSN: any run of 8 or 9 digits that passes the 11-test (python-stdnum), both with
  separators kept as boundaries ("BVH-2026-123456782") and with every separator
  stripped ("123 456 782", "1234.56.782"); letters never shield a number ("BVH123456782");
- dates in numeric forms (17/04/09, 17-4-2009, 2009.04.17, 17042009 when it is a real
  date) and Dutch (or English) written forms ("17 april 2009", "17 apr 2009");
- the subject's own name parts, whole words or, for longer names, anywhere in the
  letters of the text ("BVH-Jansen", "j.a.n.s.e.n").

The price is the odd false alarm (a report number that happens to pass the 11-test);
the caller then gets a 400 saying why and picks another value.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, Final

from stdnum.nl import bsn as stdnum_bsn

from gateway.pseudonyms.normalise import PREFIXES, fold

#: Longest text inspected; callers bound their strings far below this.
MAX_TEXT = 4096
#: Years a date of birth (or any date worth hiding) can plausibly have.
MIN_YEAR, MAX_YEAR = 1900, 2100
#: A name shorter than this is matched as a whole word only ("Ali" inside "Alibi" is not).
SUBSTRING_NAME_LENGTH: Final = 5

MONTHS: Final[dict[str, int]] = {
    # Dutch, with the usual abbreviations
    "januari": 1, "jan": 1, "februari": 2, "feb": 2, "febr": 2, "maart": 3, "mrt": 3,
    "mar": 3, "maa": 3, "april": 4, "apr": 4, "mei": 5, "juni": 6, "jun": 6, "juli": 7,
    "jul": 7, "augustus": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "oktober": 10, "okt": 10, "oct": 10, "november": 11, "nov": 11, "december": 12,
    "dec": 12,
    # English
    "january": 1, "february": 2, "march": 3, "may": 5, "june": 6, "july": 7,
    "august": 8, "october": 10,
}  # fmt: skip

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_DIGIT_RUN = re.compile(r"[0-9]+")
_NOT_LETTERS = re.compile(r"[^a-z]+")
_SEP = r"[\s./\-]{1,3}"
_NUMERIC_DATE = re.compile(rf"(?<!\d)(\d{{1,4}}){_SEP}(\d{{1,2}}){_SEP}(\d{{2,4}})(?!\d)")
_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_WRITTEN_DATE = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:e|ste|de)?[\s.\-/]*({_MONTH_NAMES})\.?[\s.\-/,]*(\d{{2}}|\d{{4}})(?!\d)"
)
_WRITTEN_DATE_MONTH_FIRST = re.compile(
    rf"(?<![a-z])({_MONTH_NAMES})\.?[\s.\-/]*(\d{{1,2}})[\s.\-/,]+(\d{{4}})(?!\d)"
)


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text[:MAX_TEXT]).casefold()


def _valid_bsn(digits: str) -> bool:
    return len(digits) in (8, 9) and int(digits) > 0 and bool(stdnum_bsn.is_valid(digits))


def _real_date(year: int, month: int, day: int) -> bool:
    if year < 100:  # two-digit years: either century could be meant
        return any(_real_date(century + year, month, day) for century in (1900, 2000))
    if not MIN_YEAR <= year <= MAX_YEAR:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _numeric_date(a: str, b: str, c: str) -> bool:
    """Three numbers with separators: day-month-year, year-month-day or month-day-year."""
    x, y, z = int(a), int(b), int(c)
    if len(a) == 4:
        return len(c) <= 2 and _real_date(x, y, z)
    if len(a) == 3 or len(c) == 3:
        return False
    return _real_date(z, y, x) or _real_date(z, x, y) or (len(c) == 2 and _real_date(x, y, z))


def _compact_date(digits: str) -> bool:
    """Eight digits that read as DDMMYYYY or YYYYMMDD."""
    if len(digits) != 8:
        return False
    return _real_date(int(digits[4:]), int(digits[2:4]), int(digits[:2])) or _real_date(
        int(digits[:4]), int(digits[4:6]), int(digits[6:])
    )


_LETTERS_RUN = re.compile(r"[^\W\d_]+")


def _year(group: str) -> bool:
    return len(group) == 4 and group[:2] in ("19", "20")


def has_bsn(text: str) -> bool:
    """A BSN passing the 11-test: a run of 8 or 9 digits, or 9 digits written in groups
    ("123 456 782", "1234.56.782", "BVH-2026-123-456-782"); letters never shield one.

    Two groups led by a year ("2026-00123", "2026-1007") are a report number's usual
    shape, not a BSN's, and are left alone: joined, one in eleven would pass the test.
    """
    for segment in _LETTERS_RUN.split(_normal(text)):
        groups = _DIGIT_RUN.findall(segment)
        # a run padded with leading zeros ("000123456782") is the number it pads
        if any(_valid_bsn(group.lstrip("0").zfill(9)) for group in groups if len(group) >= 8):
            return True
        for start in range(len(groups)):
            joined = groups[start]
            for count, group in enumerate(groups[start + 1 :], start=2):
                joined += group
                if len(joined) > 9:
                    break
                if len(joined) != 9 or (count == 2 and _year(groups[start])):
                    continue
                if _valid_bsn(joined):
                    return True
    return False


def has_date(text: str) -> bool:
    """A calendar date, numeric or written (Dutch or English month names)."""
    normal = _normal(text)
    for m in _NUMERIC_DATE.finditer(normal):
        if _numeric_date(*m.groups()):
            return True
    for m in _WRITTEN_DATE.finditer(normal):
        day, month, year = m.groups()
        if _real_date(int(year), MONTHS[month], int(day)):
            return True
    for m in _WRITTEN_DATE_MONTH_FIRST.finditer(normal):
        month, day, year = m.groups()
        if _real_date(int(year), MONTHS[month], int(day)):
            return True
    bounded = _NOT_ALNUM.sub(" ", normal)
    return any(_compact_date(m.group()) for m in _DIGIT_RUN.finditer(bounded))


def subject_name_parts(subject: Mapping[str, Any]) -> frozenset[str]:
    """The subject's name words, folded; prefixes and words under 3 letters left out."""
    return names_of(v for k in ("familyName", "givenNames") if isinstance(v := subject.get(k), str))


def names_of(values: Iterable[str]) -> frozenset[str]:
    """Name parts of free-text names: each word (3+ letters, no prefix) and the whole
    name with its spaces dropped ("van der Berg" → "berg", "vanderberg")."""
    words: set[str] = set()
    for value in values:
        folded = fold(value[:MAX_TEXT])
        words.update(w for w in _NOT_LETTERS.split(folded) if len(w) >= 3 and w not in PREFIXES)
        whole = _NOT_LETTERS.sub("", folded)
        if len(whole) >= SUBSTRING_NAME_LENGTH:
            words.add(whole)
    return frozenset(words)


def has_name(text: str, names: Iterable[str]) -> bool:
    """One of `names` (folded name parts) as a word, or anywhere when long enough."""
    wanted = [n for n in names if n]
    if not wanted:
        return False
    folded = fold(unicodedata.normalize("NFKC", text[:MAX_TEXT]))
    words = set(_NOT_LETTERS.split(folded))
    letters = _NOT_LETTERS.sub("", folded)
    return any(
        name in words or (len(name) >= SUBSTRING_NAME_LENGTH and name in letters) for name in wanted
    )


def personal_data_kind(text: str, names: Iterable[str] = ()) -> str | None:
    """What kind of personal data `text` seems to hold ("bsn", "date", "name"), or None."""
    if has_bsn(text):
        return "bsn"
    if has_date(text):
        return "date"
    if has_name(text, names):
        return "name"
    return None


def holds_personal_data(text: str, names: Iterable[str] = ()) -> bool:
    """True when `text` holds a BSN, a date or one of the subject's name parts."""
    return personal_data_kind(text, names) is not None


def recordable_uuid() -> str:
    """A new random id that `safe_uuid` records as it is. About one random UUID in 70
    holds a BSN or date shape by chance ("92889669-…" passes the 11-test as a BSN); a
    refusal about a signal or match with such an id would be audited without it."""
    while True:
        value = str(uuid.uuid4())
        if safe_uuid(value) is not None:
            return value


def safe_uuid(value: str) -> str | None:
    """A caller-supplied id as we may record it: a canonical UUID holding no BSN or date
    shape (a caller can choose the digits of a UUID too), else None."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    if str(parsed) != value or holds_personal_data(value):
        return None
    return value
