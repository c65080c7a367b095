"""Synthetic people for the demo: made-up Dutch names and BSNs that pass the 11-test.

The BSNs are drawn from a seeded generator and checked only for the checksum; they are
not known to belong to anyone, and the demo never stores them (only pseudonyms reach
the gateway's database).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

GIVEN_NAMES = [
    "Sanne",
    "Fleur",
    "Lotte",
    "Noa",
    "Yara",
    "Fatima",
    "Sara",
    "Iris",
    "Julia",
    "Amira",
    "Daan",
    "Milan",
    "Sem",
    "Noah",
    "Mohamed",
    "Lucas",
    "Levi",
    "Finn",
    "Bram",
    "Thijs",
]
FAMILY_NAMES = [
    "de Vries",
    "Jansen",
    "van den Berg",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Çelik",
    "Yılmaz",  # noqa: RUF001 - a real Turkish letter, tests normalisation
    "El Amrani",
    "ter Horst",
    "Nijhuis",
]


@dataclass(frozen=True)
class Person:
    bsn: str
    family_name: str
    given_names: str
    date_of_birth: str

    def subject(self, *, with_bsn: bool = True) -> dict[str, str]:
        subject = {
            "familyName": self.family_name,
            "givenNames": self.given_names,
            "dateOfBirth": self.date_of_birth,
        }
        if with_bsn:
            subject["bsn"] = self.bsn
        return subject


def valid_bsn(rng: random.Random, first: tuple[int, int] = (1, 9)) -> str:
    """Nine digits passing the 11-test (weights 9..2 and -1), the first digit in `first`."""
    while True:
        digits = [rng.randint(*first)] + [rng.randint(0, 9) for _ in range(7)]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10:
            return "".join(map(str, digits)) + str(last)


def people(count: int, seed: int = 2016, today: date | None = None) -> list[Person]:
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    today = today or date.today()
    found: list[Person] = []
    seen: set[str] = set()
    while len(found) < count:
        bsn = valid_bsn(rng)
        if bsn in seen:
            continue
        seen.add(bsn)
        age_days = rng.randint(13 * 365, 24 * 365)
        found.append(
            Person(
                bsn=bsn,
                family_name=rng.choice(FAMILY_NAMES),
                given_names=rng.choice(GIVEN_NAMES),
                date_of_birth=(today - timedelta(days=age_days)).isoformat(),
            )
        )
    return found
