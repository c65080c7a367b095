# ruff: noqa: RUF001
"""A small synthetic Dutch test population with the variations issue 14 lists.

Not FEBRL and not tuned to: each seed draws a new population. Every person gets two
or three records, as different partners would write them; each record carries one
variation (prefix spelling, transliteration, ij/y, umlaut, short or dropped given
name, one-letter typo, day/month swap, swapped fields), and some carry a BSN. Hard
negatives are built in: twins (same family name and birth date, other given name and
BSN), siblings, and children sharing a popular first name and birthday.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

FAMILY_NAMES = [
    "van den Berg", "de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "de Boer",
    "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker",
    "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer", "van der Linden",
    "Kok", "Jacobs", "de Haan", "Vermeulen", "van Dijk", "Schouten", "van der Heijden",
    "Çelik", "Yılmaz", "Şahin", "Doğan", "Öztürk", "Kaya", "Demir", "Aydın",
    "El Amrani", "Bouzid", "Benali", "Ouali", "Mohammed", "Haddou", "Ait Taleb",
    "Müller", "Schäfer", "Kühn", "Groß", "in 't Veld", "ter Horst", "Ten Cate",
    "de Vries-Jansen", "Jansen-van der Berg", "IJzerman", "Wijnands", "Heijmans",
]  # fmt: skip
GIVEN_NAMES = [
    "Anna Maria", "Johannes", "Emma", "Noah", "Sophie", "Daan", "Julia", "Lucas", "Mila",
    "Sem", "Tess", "Finn", "Zoë", "Liam", "Yara", "Mohammed", "Fatima", "Ayşe", "Mehmet",
    "Yusuf", "Nour", "Ibrahim", "Elif", "Emir", "IJsbrand", "Pieter Jan", "Cornelis",
    "Willem", "Hendrik", "Sara", "Lotte", "Jesse", "Levi", "Noor", "Eva", "Saar", "Fleur",
]  # fmt: skip
SHORT = {
    "Johannes": "Jan",
    "Cornelis": "Kees",
    "Willem": "Wim",
    "Hendrik": "Henk",
    "Mohammed": "Mohamed",
}
PREFIX_SPELLINGS = {
    "van den Berg": ["Berg, v.d.", "Vandenberg", "v.d. Berg", "Berg"],
    "van der Meer": ["Meer, van der", "v/d Meer"],
    "van der Linden": ["Linden, v.d."],
    "van der Heijden": ["vd Heijden", "van der Heyden"],
    "in 't Veld": ["In’t Veld", "Veld, in 't"],
    # Partners drop the second part of a double name, or the hyphen; both parts alone
    # in two records of one person cannot link (nor should they, without a BSN).
    "de Vries-Jansen": ["de Vries", "Vries-Jansen, de", "de Vries Jansen"],
    "Jansen-van der Berg": ["Jansen", "Jansen v.d. Berg"],
    "Ait Taleb": ["Aït-Taleb", "Taleb"],
}
TRANSLIT = str.maketrans(
    {"ç": "c", "Ç": "C", "ş": "s", "Ş": "S", "ğ": "g", "ı": "i", "ö": "o", "Ö": "O"}
)
UMLAUT = {"ü": "ue", "ä": "ae", "ö": "oe", "ß": "ss"}
#: Transliterations of one Arabic name that partners write (issue 14: one phonetic key).
ARABIC = {"Mohammed": ["Mohamed", "Muhammad", "Mohammad"]}
#: The variations issue 14's "Why" lists; `population` draws each of them.
VARIATIONS = frozenset(
    {
        "prefix",  # van den Berg / Berg, v.d. / Vandenberg
        "translit",  # Çelik / Celik
        "ij",  # IJsbrand / Ysbrand
        "umlaut",  # Müller / Mueller
        "arabic",  # Mohammed / Mohamed / Muhammad
        "hyphen",  # a double or hyphenated family name, or one part of it
        "short_given",  # Johannes / Jan
        "drop_second",  # second given name dropped
        "typo_family",  # a letter doubled, dropped, swapped or replaced
        "typo_given",
        "daymonth",
        "swapped",
    }
)


def _bsn(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(10) for _ in range(8)]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10 and digits[0] != 0:
            return "".join(map(str, digits)) + str(last)


@dataclass(frozen=True)
class Record:
    person: int
    subject: dict[str, str]
    #: Which variation this record carries ("" for the as-registered ones).
    variation: str = ""
    #: The person as registered (without BSN), which the variation was made from.
    registered: dict[str, str] | None = None


def _typo(rng: random.Random, name: str) -> str:
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    if len(letters) < 4:
        return name
    i = rng.choice(letters[1:-1])
    kind = rng.choice(["double", "drop", "swap", "replace"])
    if kind == "double":
        return name[: i + 1] + name[i] + name[i + 1 :]
    if kind == "drop":
        return name[:i] + name[i + 1 :]
    if kind == "swap" and name[i + 1].isalpha():
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    return name[:i] + rng.choice("aeiouklmnrst") + name[i + 1 :]


def _vary(rng: random.Random, subject: dict[str, str]) -> tuple[dict[str, str], str]:
    out = dict(subject)
    family, given, dob = subject["familyName"], subject["givenNames"], subject["dateOfBirth"]
    choices = ["typo_family", "typo_given", "short_given", "drop_second", "none"]
    if family in PREFIX_SPELLINGS:
        choices += ["hyphen" if "-" in family else "prefix"] * 3
    if family in ARABIC or given.split()[0] in ARABIC:
        choices += ["arabic"] * 3
    if family.translate(TRANSLIT) != family or given.translate(TRANSLIT) != given:
        choices += ["translit"] * 3
    if any(u in family for u in UMLAUT):
        choices += ["umlaut"] * 2
    if family.startswith("IJ") or given.startswith("IJ") or "ij" in family:
        choices += ["ij"] * 2
    if int(dob[8:]) <= 12 and dob[5:7] != dob[8:]:
        choices.append("daymonth")
    choices.append("swapped")
    kind = rng.choice(choices)
    if kind == "typo_family":
        out["familyName"] = _typo(rng, family)
    elif kind == "typo_given":
        out["givenNames"] = _typo(rng, given)
    elif kind == "short_given":
        first = given.split()[0]
        out["givenNames"] = SHORT.get(first, first)
    elif kind == "drop_second":
        out["givenNames"] = given.split()[0]
    elif kind in ("prefix", "hyphen"):
        out["familyName"] = rng.choice(PREFIX_SPELLINGS[family])
    elif kind == "arabic":
        first, *rest = given.split()
        if first in ARABIC:
            out["givenNames"] = " ".join([rng.choice(ARABIC[first]), *rest])
        if family in ARABIC:
            out["familyName"] = rng.choice(ARABIC[family])
    elif kind == "translit":
        out["familyName"], out["givenNames"] = family.translate(TRANSLIT), given.translate(TRANSLIT)
    elif kind == "umlaut":
        for old, new in UMLAUT.items():
            family = family.replace(old, new)
        out["familyName"] = family
    elif kind == "ij":
        out["familyName"] = family.replace("IJ", "Y").replace("ij", "y")
        out["givenNames"] = given.replace("IJ", "Y")
    elif kind == "daymonth":
        out["dateOfBirth"] = f"{dob[:4]}-{dob[8:]}-{dob[5:7]}"
    elif kind == "swapped":
        out["familyName"], out["givenNames"] = given.split()[0], family
    return out, kind


def population(seed: int, people: int = 150) -> tuple[list[Record], set[frozenset[int]]]:
    """Records, and the pairs of persons that are twins (must never be matched)."""
    rng = random.Random(seed)
    records: list[Record] = []
    twins: set[frozenset[int]] = set()
    person = 0
    start = date(2005, 1, 1)
    taken: set[tuple[str, str]] = set()
    while person < people:
        family = rng.choice(FAMILY_NAMES)
        dob = (start + timedelta(days=rng.randrange(365 * 12))).isoformat()
        if (family, dob) in taken:
            # Two groups with one family name and birth date would be twins that are
            # not registered as such: twins here always carry their BSN (below).
            continue
        taken.add((family, dob))
        group = [(rng.choice(GIVEN_NAMES), dob)]
        roll = rng.random()
        if roll < 0.1:  # twins: same family name and birth date, another given name
            other = rng.choice([g for g in GIVEN_NAMES if g != group[0][0]])
            group.append((other, dob))
        elif roll < 0.2:  # a sibling
            sibling_dob = (
                date.fromisoformat(dob) + timedelta(days=rng.randrange(400, 2000))
            ).isoformat()
            group.append((rng.choice(GIVEN_NAMES), sibling_dob))
        members = []
        for given, born in group:
            bsn = _bsn(rng)
            truth = {"familyName": family, "givenNames": given, "dateOfBirth": born, "bsn": bsn}
            copies = rng.choice([2, 2, 3])
            for _ in range(copies):
                subject, kind = _vary(rng, {k: v for k, v in truth.items() if k != "bsn"})
                if (len(group) > 1 and roll < 0.1) or rng.random() < 0.3:
                    subject["bsn"] = bsn  # twins are registered with their BSN
                registered = {k: v for k, v in truth.items() if k != "bsn"}
                records.append(Record(person, subject, kind, registered))
            members.append(person)
            person += 1
        if roll < 0.1:
            twins.add(frozenset(members))
    # Children who share a popular first name and birthday, nothing else.
    for _ in range(people // 10):
        dob = (start + timedelta(days=rng.randrange(365 * 12))).isoformat()
        for family in rng.sample(FAMILY_NAMES, 2):
            records.append(
                Record(person, {"familyName": family, "givenNames": "Daan", "dateOfBirth": dob})
            )
            person += 1
    return records, twins
