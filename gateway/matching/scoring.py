"""Scoring a pair of signals from which key families agree: tiers `strong`, `possible`.

Pure functions, no database: the caller passes each signal's pseudonyms by family
(a family may hold several elements, e.g. `del_dob`) and, optionally, how many stored
signals hold a given element. Only pseudonyms are compared, never identifiers.

The score is a logistic-regression log-odds over agreement features, one pair per
family: `agree` (the two share an element of that family, scaled down when the
element is frequent, see below) and `disagree` (both have the family, nothing
shared). Families are strongly correlated (a `name_dob` agreement implies the
`del_dob`, `phon_dob` and `part_dob` ones), which is why the weights are fitted
jointly rather than summed as independent Fellegi-Sunter likelihood ratios.

Rules that are not learnt:
- BSN: a disagreeing BSN vetoes every name match (twins share family name, birth
  date and often initials), and an agreeing BSN is `strong` by itself (it is the
  person's number, checked by the 11-test).
- Frequent keys: an agreeing element held by more than `HANDFUL` signals (a common
  surname on a common birthday, "names" of a popular first name and surname) counts
  `HANDFUL / frequency` of its weight, and is no evidence for a tier (below). The
  count is of signals, not people (pseudonyms cannot tell), so the same child reported
  by several partners raises it too: hence ten, not three. FEBRL's largest counts are
  10 (FEBRL4, `names_del`) and 8 (FEBRL3, where one person has up to six records).
- Evidence: the score ranks, but a tier also needs agreement on enough identifiers
  (`tier_of`): `possible` two of family name, given name and date of birth, one of
  them the family name unless a side lacks it (the first letter alone is not enough);
  `strong` family name and date of birth
  and a given name that agrees or is missing. FEBRL has few name collisions; a youth
  register has children sharing a first name and a birthday, and twins without a BSN.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from gateway.pseudonyms.matchkeys import FAMILY_BSN, LINKAGE_FAMILIES

K = TypeVar("K", bound=Hashable)
Tier = Literal["strong", "possible"]

#: More signals than this sharing one element makes it a frequent key.
HANDFUL = 10
#: The scored families: every linkage family but the BSN (a rule, above).
SCORED_FAMILIES: tuple[str, ...] = tuple(f for f in LINKAGE_FAMILIES if f != FAMILY_BSN)

# Weights: logistic regression on the agreement features of every FEBRL4 candidate
# pair (a record of file A and one of file B sharing at least one key; 5,189 pairs,
# 4,721 of them true links), name + date of birth only, through the real
# normalisation and match keys. Signs constrained (agreeing ≥ 0, disagreeing ≤ 0;
# unconstrained, FEBRL's few non-matching candidates taught it that *disagreeing*
# names are evidence for a match), L2 penalty 1, intercept free, fitted with
# L-BFGS-B. Reproduce with `python bench/bench_linkage.py --fit` (prints this table).
# Refitted 2026-11 after `del_dob` also took the name as written (phon_dob fell from
# 0.73 to 0.16: the new deletion keys explain what it did), and again after `names_ym`
# came (names_year fell from 1.36 to 0.99: part of what it said, names_ym says better).
# FEBRL3 was not used for fitting: it is the held-out check in the same benchmark.
INTERCEPT = 2.36
AGREE_WEIGHTS: dict[str, float] = {
    "name_dob": 0.00,
    "swap_dob": 1.08,
    "given_dob": 0.49,
    "names_year": 0.99,
    "names": 0.00,
    "init_dob": 0.08,
    "phon_dob": 0.13,
    "del_dob": 2.89,
    "part_dob": 0.00,
    "dm_swap": 1.98,
    "xname_dob": 1.98,
    "names_del": 0.00,
    "fgi_dob": 0.45,
    "names_ym": 1.19,
}
DISAGREE_WEIGHTS: dict[str, float] = {
    "name_dob": 0.00,
    "swap_dob": -0.17,
    "given_dob": 0.00,
    "names_year": -0.07,
    "names": -0.39,
    "init_dob": 0.00,
    "phon_dob": 0.00,
    "del_dob": -1.51,
    "part_dob": 0.00,
    "dm_swap": -0.53,
    "xname_dob": -0.53,
    "names_del": 0.00,
    "fgi_dob": 0.00,
    "names_ym": -0.28,
}
# FEBRL has no day/month swaps: `dm_swap` agrees there exactly when `xname_dob` does,
# so the fit shares one weight between the two.
#: Tier thresholds on the score. A tier is the score AND the evidence rules below, so
#: each threshold is the lowest score at which the precision of the FEBRL4 candidate
#: pairs whose evidence allows that tier (`Assessment.evidence_tier`) stays ≥ 0.999
#: (strong) and ≥ 0.995 (possible); `bench_linkage.py --fit` prints both (1.80 and
#: 2.36; scores are sums of two-decimal weights, so halfway below is exact). They are
#: chosen among different pairs, which is why the strong one can be the lower: strong
#: evidence (family name, given name and date of birth all agree) is already rare
#: among different people. Below 1.80 with strong evidence are namesakes born in the
#: same year whose day and month both differ (`names_year` alone; FEBRL4 has 5 false
#: and 4 true such pairs); at 1.80 the same with a typo in one of day and month
#: (`names_ym` agrees; 15 true, 1 false). That 1 is two namesakes born in the same
#: month, which a register with popular names will hold more of: the workspace
#: therefore says that only part of the date agreed (`gateway.web.labels.agreement`).
#: (Until `names_ym`, 2026-11, that group scored alike and the threshold was 3.27:
#: strong recall 0.716, now 0.721.)
#: The evidence rules alone allow 0.722 of FEBRL4's true pairs to be strong: the rest
#: have a replaced given name (like twins) or a replaced or missing family name (like
#: two children who share a first name and a birthday), which must not be strong. The
#: possible one came out at 2.36, the intercept: any pair with enough evidence and
#: nothing that disagrees.
STRONG_THRESHOLD = 1.795
POSSIBLE_THRESHOLD = 2.355

# Evidence rules (not learnt; they hold whatever the data set): the score ranks, but
# a tier also needs evidence from enough of the three identifiers. FEBRL has few
# name collisions; a youth register has many children who share a first name and a
# birthday, or a family name and a birth year, and twins without a BSN.
#: Families whose agreement says the family names agree (exactly or nearly). Not
#: `fgi_dob` (2026-11): one letter of a family name is what two children who share a
#: first name and a birthday have in common often enough (Dutch family names crowd on
#: a few initials), and the extended Dutch test set's hard negatives showed it making
#: them `possible` (precision 0.988). Costs FEBRL4's possible tier 0.863 → 0.854, and
#: a pair of records that *each* carry a family-name typo now needs another key.
FAMILY_NAME_EVIDENCE = frozenset(
    {
        "name_dob",
        "del_dob",
        "phon_dob",
        "part_dob",
        "swap_dob",
        "init_dob",
        "names",
        "names_year",
        "names_ym",
        "names_del",
    }
)
#: Families whose agreement says the first given names agree.
GIVEN_NAME_EVIDENCE = frozenset(
    {"given_dob", "swap_dob", "names", "names_year", "names_ym", "init_dob", "names_del", "fgi_dob"}
)
#: Families keyed on the whole date of birth (an agreement says the date agrees).
FULL_DATE_FAMILIES = (
    "name_dob",
    "del_dob",
    "phon_dob",
    "part_dob",
    "swap_dob",
    "given_dob",
    "init_dob",
    "xname_dob",
    "fgi_dob",
)
#: Families whose agreement says the date of birth agrees (or nearly: year + names).
DATE_EVIDENCE = frozenset(FULL_DATE_FAMILIES) | {
    # day and month only swapped, or the exact year (and month or day) with the same names
    "dm_swap",
    "names_year",
    "names_ym",
}


def evidence(agreed: frozenset[str]) -> tuple[bool, bool, bool]:
    """Whether the agreement covers the family name, the given name, the date of birth.

    `xname_dob` and `dm_swap` (one name of either field + the date) speak for the
    family name only when the given names do not already explain them.
    """
    family = bool(agreed & FAMILY_NAME_EVIDENCE) or (
        bool(agreed & {"xname_dob", "dm_swap"}) and "given_dob" not in agreed
    )
    return family, bool(agreed & GIVEN_NAME_EVIDENCE), bool(agreed & DATE_EVIDENCE)


@dataclass(frozen=True)
class Assessment:
    """What the scoring says about one pair."""

    score: float
    tier: Tier | None
    #: Families with a shared element (the `linkageKeys` a match shows).
    agreed: frozenset[str]
    #: True when both had a BSN and they differ: never a match.
    vetoed: bool = False
    #: The best tier the evidence rules allow, whatever the score (for the fit).
    evidence_tier: Tier | None = None


Frequency = Callable[[str, K], int]


def _shared(a: Collection[K], b: Collection[K]) -> set[K]:
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    large_set = large if isinstance(large, (set, frozenset)) else set(large)
    return {x for x in small if x in large_set}


def features(
    a: Mapping[str, Collection[K]],
    b: Mapping[str, Collection[K]],
    frequency: Frequency[K] | None = None,
) -> dict[str, float]:
    """`agree:<family>` in [0, 1] (frequency-scaled) and `disagree:<family>` in {0, 1}."""
    found: dict[str, float] = {}
    for family in SCORED_FAMILIES:
        mine, theirs = a.get(family), b.get(family)
        if not mine or not theirs:
            continue
        common = _shared(mine, theirs)
        if not common:
            found[f"disagree:{family}"] = 1.0
            continue
        rarest = min(frequency(family, e) for e in common) if frequency else 1
        found[f"agree:{family}"] = min(1.0, HANDFUL / rarest) if rarest > 0 else 1.0
    if "agree:dm_swap" in found and not any(f"agree:{f}" in found for f in FULL_DATE_FAMILIES):
        # Day and month swapped: that alone explains every full-date disagreement.
        for family in FULL_DATE_FAMILIES:
            found.pop(f"disagree:{family}", None)
    return found


def score_features(found: Mapping[str, float]) -> float:
    total = INTERCEPT
    for name, value in found.items():
        kind, family = name.split(":", 1)
        weights = AGREE_WEIGHTS if kind == "agree" else DISAGREE_WEIGHTS
        total += weights.get(family, 0.0) * value
    return total


def tier_of(
    score: float,
    agreed: frozenset[str],
    given_disagrees: bool = False,
    family_disagrees: bool = False,
) -> Tier | None:
    """`strong`: the score, and family name + date of birth + a given name that agrees
    (or is missing on one side: twins without a BSN differ exactly there). `possible`:
    the score and two of the three identifiers, one of them the family name unless
    that is missing on one side (children who only share a first name and a birthday
    are not a possible match)."""
    family, given, dob = evidence(agreed)
    if score >= STRONG_THRESHOLD and family and dob and (given or not given_disagrees):
        return "strong"
    if (
        score >= POSSIBLE_THRESHOLD
        and family + given + dob >= 2
        and (family or not family_disagrees)
    ):
        return "possible"
    return None


def assess(
    a: Mapping[str, Collection[K]],
    b: Mapping[str, Collection[K]],
    frequency: Frequency[K] | None = None,
) -> Assessment:
    """Score a pair of signals' pseudonyms (by family) and place it in a tier."""
    agreed = frozenset(
        family for family in a if family in b and a[family] and _shared(a[family], b[family])
    )
    bsn_a, bsn_b = a.get(FAMILY_BSN), b.get(FAMILY_BSN)
    if bsn_a and bsn_b:
        if not _shared(bsn_a, bsn_b):
            return Assessment(float("-inf"), None, frozenset(), vetoed=True)
        return Assessment(float("inf"), "strong", agreed)
    found = features(a, b, frequency)
    value = score_features(found)
    # A frequent key is no evidence of identity: only well-supported agreement counts.
    supported = frozenset(f for f in agreed if found.get(f"agree:{f}", 0.0) >= 1.0)
    given_disagrees = "disagree:given_dob" in found or "disagree:names" in found
    family_disagrees = "disagree:del_dob" in found or "disagree:names_del" in found
    return Assessment(
        value,
        tier_of(value, supported, given_disagrees, family_disagrees),
        agreed,
        evidence_tier=tier_of(float("inf"), supported, given_disagrees, family_disagrees),
    )
