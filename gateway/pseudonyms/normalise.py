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
from dataclasses import dataclass, field
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
    #: Each part of a double or hyphenated name, prefixes split off ("de Vries-van
    #: Dam" → ("vries", "dam")); empty for a single name. Not part of equality, so the
    #: v1 comparisons (prefix, core) are unchanged.
    parts: tuple[str, ...] = field(default=(), compare=False, repr=False)

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
    return FamilyName(prefix=prefix, core="".join(rest), parts=family_name_parts(folded))


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


# --- linkage forms (v1 key families beyond bsn and name_dob) --------------------------
#
# Everything below feeds the typo-tolerant key families in `matchkeys`. It never
# changes `normalise_family_name(...).core`, which the stored `name_dob` pseudonyms
# depend on: these are additional, derived forms. Each function takes text that the
# normalisers above already produced (folded, letters and spaces only), is total on
# any string and idempotent on its own output (property-tested).

#: RvIG Landelijke Tabel 36 "Voorvoegsels" (the BRP's table of family-name
#: prefixes, https://publicaties.rvig.nl/Landelijke_tabellen, Tabel 36), transcribed
#: in lower case. A prefix is matched as whole words after folding, so "'t", "d'" and
#: "l'" are written here as they are in the table and reduced with `_tokens` below.
#: Recheck against the published table when RvIG revises it (its changes are rare:
#: additions of foreign particles).
RVIG_TABLE_36: tuple[str, ...] = (
    "'s", "'t", "a", "aan", "aan 't", "aan de", "aan den", "aan der", "aan het", "aan t",
    "af", "al", "am", "am de", "auf", "auf dem", "auf den", "auf der", "auf ter", "aus",
    "aus 'm", "aus dem", "aus den", "aus der", "aus m", "ben", "bij", "bij 't", "bij de",
    "bij den", "bij het", "bij t", "bin", "boven d", "boven d'", "d", "d'", "da", "dal",
    "dal'", "dalla", "das", "de", "de die", "de die le", "de l", "de l'", "de la",
    "de las", "de le", "de van der", "deca", "degli", "dei", "del", "della", "den",
    "der", "des", "di", "die", "do", "don", "dos", "du", "el", "em", "en", "het", "i",
    "im", "in", "in 't", "in de", "in den", "in der", "in het", "in t", "l", "l'", "la",
    "las", "le", "les", "lo", "los", "onder", "onder 't", "onder de", "onder den",
    "onder het", "onder t", "op", "op 't", "op de", "op den", "op der", "op gen",
    "op het", "op t", "op ten", "over", "over 't", "over de", "over den", "over het",
    "over t", "s", "s'", "t", "te", "ten", "ter", "tho", "thoe", "thor", "to", "toe",
    "tot", "uijt", "uijt 't", "uijt de", "uijt den", "uijt te de", "uijt ten", "uit",
    "uit 't", "uit de", "uit den", "uit het", "uit t", "uit te de", "uit ten", "unter",
    "van", "van 't", "van de", "van de l", "van de l'", "van den", "van der", "van gen",
    "van het", "van la", "van t", "van ter", "van van de", "ver", "vom", "von",
    "von 't", "von dem", "von den", "von der", "von t", "voor", "voor 't", "voor de",
    "voor den", "voor in 't", "voor in t", "vor", "vor der", "zu", "zum", "zur",
)  # fmt: skip
#: Abbreviations partner systems write instead of a prefix ("v.", "v.d.", "v/d").
_PREFIX_ABBREVIATIONS = ("v", "vd", "v d", "v de", "v den", "v der", "v.d.", "v/d")
LINKAGE_PREFIXES: frozenset[str] = frozenset(
    " ".join(_tokens(fold(p))) for p in RVIG_TABLE_36 + _PREFIX_ABBREVIATIONS
) - {""}
_MAX_LINKAGE_PREFIX_WORDS = max(len(p.split()) for p in LINKAGE_PREFIXES)
#: Prefixes that are written glued to the name ("Vandenberg", "Vanderlinden"),
#: longest first. Only the `van` family: a glued "de"/"ter" is too often simply the
#: start of a name ("Dekker", "Terpstra") to strip for spelling purposes.
_GLUED_PREFIXES = ("vanden", "vander", "vande", "vanhet", "vant", "van")
_MIN_GLUED_REST = 4


def _strip_prefix_words(words: list[str]) -> list[str]:
    """Drop the longest leading Tabel 36 prefix, always leaving one word."""
    for length in range(min(_MAX_LINKAGE_PREFIX_WORDS, len(words) - 1), 0, -1):
        if " ".join(words[:length]) in LINKAGE_PREFIXES:
            return words[length:]
    return words


def family_name_parts(folded: str) -> tuple[str, ...]:
    """The parts of a double or hyphenated family name, each without its prefix.

    "de Vries-Jansen" → ("vries", "jansen"); "Jansen-van der Berg" → ("jansen",
    "berg"); "Berg, van den" → () (one name). Each part is also keyed on its own,
    since one partner writes the double name and another only its first part.
    """
    head, comma, tail = folded.partition(",")
    if comma and " ".join(_tokens(tail)) in LINKAGE_PREFIXES:
        folded = head
    segments = [s for s in re.split("[" + re.escape(_DASHES) + "]+", folded)]
    words_per_segment = [_strip_prefix_words(_tokens(s)) for s in segments]
    words_per_segment = [w for w in words_per_segment if w]
    if len(words_per_segment) == 1:
        parts = words_per_segment[0] if len(words_per_segment[0]) > 1 else []
    else:
        parts = ["".join(w) for w in words_per_segment]
    unique = tuple(dict.fromkeys(p for p in parts if p))
    return unique if len(unique) > 1 else ()


#: Spelling variants that partners write for the same name, as ordered rewrites on
#: folded letters. ü/ö/ä have already lost their diaeresis in `fold`, so "Müller",
#: "Mueller" and "Muller" all meet at "muller"; "ß" is "ss" already. The Dutch ij is
#: written "y" ("IJsbrand"/"Ysbrand"); Turkish ç ş ğ and the dotless i fold to c s g i.
_SPELLING = (
    ("ij", "y"),
    ("ue", "u"),
    ("oe", "o"),
    ("ae", "a"),
)


def spelling_form(name: str) -> str:
    """A name's letters with the common Dutch and German spelling variants merged.

    Input is a normalised name (letters only, possibly spaces); spaces are dropped.
    "ijsbrand" and "ysbrand" → "ysbrand"; "mueller" and "muller" → "muller".
    Glued "van" prefixes are split off ("vandenberg" → "berg") when at least four
    letters remain. Idempotent.
    """
    text = "".join(c for c in fold(name) if c.isalpha())
    for _ in range(3):  # rewrites can create new pairs ("uee"); bounded fixed point
        before = text
        for old, new in _SPELLING:
            text = text.replace(old, new)
        for glued in _GLUED_PREFIXES:
            if text.startswith(glued) and len(text) - len(glued) >= _MIN_GLUED_REST:
                text = text[len(glued) :]
                break
        if text == before:
            break
    return text


#: Consonant rewrites of the phonetic code, in order (Dutch, German, Turkish and
#: Arabic-in-Dutch transliteration conventions): "sch"/"sh"/"sj" are s, "ch"/"kh"/
#: "gh"/"g" one sound, "dt"/"d" at the end t, "ph" f, "th" t, "ck"/"c"/"q" k, "z" s,
#: "w"/"v" f, "x" ks, "dj"/"tj" j.
_PHONETIC_REWRITES = (
    ("sch", "s"),
    ("sh", "s"),
    ("sj", "s"),
    ("kh", "g"),
    ("gh", "g"),
    ("ch", "g"),
    ("dj", "j"),
    ("tj", "j"),
    ("ph", "f"),
    ("th", "t"),
    ("dt", "t"),
    ("ck", "k"),
    ("qu", "kw"),
    ("q", "k"),
    ("x", "ks"),
    ("c", "k"),
    ("z", "s"),
    ("w", "f"),
    ("v", "f"),
)
_VOWELS = frozenset("aeiouy")
_MAX_PHONETIC = 8


def phonetic_code(name: str) -> str:
    """A Dutch-aware phonetic code: first sound, then the consonant skeleton.

    Built on `spelling_form`, with the consonant rewrites above; vowels are dropped
    after the first letter, an "h" only survives between two vowels, a final "d"
    sounds as "t", and repeated consonants collapse. So "Mohammed", "Mohamed" and
    "Muhammad" all give "mhmt"; "van den Berg", "Berg, v.d." and "Vandenberg" give
    "brg"; "Smit", "Smith" and "Schmidt" give "smt". At most 8 characters.
    """
    text = spelling_form(name)
    if not text:
        return ""
    for old, new in _PHONETIC_REWRITES:
        text = text.replace(old, new)
    if text.endswith("d"):
        text = text[:-1] + "t"
    first = "a" if text[0] in _VOWELS else text[0]
    out = [first]
    for index in range(1, len(text)):
        char = text[index]
        if char in _VOWELS:
            continue
        if char == "h":
            after = text[index + 1] if index + 1 < len(text) else ""
            if not (text[index - 1] in _VOWELS and after in _VOWELS):
                continue
        if char != out[-1]:
            out.append(char)
    return "".join(out)[:_MAX_PHONETIC]


#: Common Dutch given-name short forms, to the form partners mostly register. Small
#: on purpose: a wrong merge costs precision, so only unambiguous pairs.
_GIVEN_NAME_SHORT_FORMS = {
    "johannes": "jan", "johan": "jan", "hans": "jan",
    "wilhelmus": "willem", "wim": "willem",
    "cornelis": "kees",
    "hendrik": "henk", "hendrikus": "henk",
    "jacobus": "jaap", "koos": "jaap",
    "petrus": "piet", "pieter": "piet",
    "gerardus": "gerard",
    "theodorus": "theo",
    "antonius": "anton", "toon": "anton",
    "franciscus": "frans",
    "adrianus": "adriaan", "arie": "adriaan",
    "elisabeth": "els", "liesbeth": "els",
    "catharina": "tineke", "trijntje": "tineke",
    "johanna": "anneke",
    "alexander": "sander",
    "mohamed": "mohammed", "muhammad": "mohammed", "mohammad": "mohammed", "mo": "mohammed",
    "abdelkader": "abdelkader", "abdul": "abdel",
}  # fmt: skip


def first_given_name(given_names: str) -> str:
    """The first given name in spelling form, a known short form mapped to one name.

    "Jan-Peter" (normalised "jan peter") → "jan"; "Johannes Maria" → "jan".
    """
    words = _tokens(fold(given_names))
    if not words:
        return ""
    first = words[0]
    first = _GIVEN_NAME_SHORT_FORMS.get(first, first)
    return spelling_form(first)


def initials(given_names: str) -> str:
    """The initials of the given names: "Jan Peter" and "J.P." both give "jp"."""
    return "".join(word[0] for word in _tokens(fold(given_names)))


#: Upper bound on one-character-deletion neighbours per name (keys per signal).
MAX_DELETION_NEIGHBOURS = 16
#: Names shorter than this get no deletion neighbours: "li" → "l"/"i" match anything.
MIN_DELETION_LENGTH = 4


def deletion_neighbours(name: str, positions: int = MAX_DELETION_NEIGHBOURS) -> frozenset[str]:
    """The name itself and each form with one letter deleted (bounded).

    Two names within one substitution, insertion, deletion or adjacent swap share
    at least one member ("jansen"/"janssen" share "jansen", "smith"/"smtih" share
    "smth"). Names longer than `MAX_DELETION_NEIGHBOURS` letters only get deletions
    in their first 16 positions, so a signal never yields more than 17 keys here;
    `positions` lowers that bound (a typo past it is then not tolerated).
    """
    if len(name) < MIN_DELETION_LENGTH:
        return frozenset({name}) if name else frozenset()
    last = min(len(name), positions, MAX_DELETION_NEIGHBOURS)
    return frozenset({name} | {name[:i] + name[i + 1 :] for i in range(last)})
