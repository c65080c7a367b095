"""Linkage on pseudonyms only, measured on FEBRL4 (tuning) and FEBRL3 (held out).

Every record goes through the real code path: `normalise_*` (a field that does not
normalise is left out, as a partner would leave it out), `linkage_keys`, the
`Pseudonymiser` (RFC 9497 OPRF under a fresh random key, in-process), and
`gateway.matching.scoring.assess` on the pseudonyms. Only family name, given name
and date of birth are used (no address, no social-security number: the gateway
links on name and date of birth unless there is a BSN).

Beside it, in the same run, plaintext baselines from the `recordlinkage` package on
the same three fields: ECM (unsupervised Fellegi-Sunter) on binarised Jaro-Winkler
comparisons, and the sum of string similarities. Each method is scored as "recall
over all true pairs at the best threshold whose precision is ≥ p".

What else it prints, and why:
- per tier, the recall the evidence rules alone would allow (`scoring.tier_of` at any
  score): FEBRL4's strong tier cannot pass 0.72 without making twin-like pairs (the
  given name replaced) or first-name-and-birthday pairs (the family name replaced or
  missing) strong, which the rules forbid;
- the true pairs that share any key at all: what a tier could reach with no evidence
  rule whatsoever (FEBRL3's duplicates of duplicates share fewer keys, so even this
  ceiling is lower there);
- "through clusters": the pairs that end up in one match, since the gateway grows a
  match from every link (FEBRL3 has up to six records of a person, whose duplicates
  often do not link to each other directly but each link to the original);
- the largest key frequencies (the issue asks for them): per family, and the most
  frequent elements overall, with how many exceed `scoring.HANDFUL`;
- the OPRF cost: CPU time per record and keys/s over each data set, and for one
  signal that yields every family (`EVERY_FAMILY`, long double names: the most keys),
  through the gateway's batched path and key by key.

    PYTHONPATH=$PWD python bench/bench_linkage.py          # the figures
    PYTHONPATH=$PWD python bench/bench_linkage.py --fit    # refit the scoring weights

Needs the dev extras (`recordlinkage`, which bundles FEBRL and brings scikit-learn).
FEBRL dates of birth are normalised against 2009-01-01 (the data set's time), so the
"not more than 120 years ago" rule drops no more than it would have at the time.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.crypto import oprf
from gateway.matching import scoring
from gateway.pseudonyms import InvalidSubject, Pseudonymiser
from gateway.pseudonyms.matchkeys import (
    LINKAGE_FAMILIES,
    NormalisedSubject,
    derive_linkage_keys,
    linkage_keys,
)
from gateway.pseudonyms.normalise import (
    deletion_neighbours,
    first_given_name,
    normalise_date_of_birth,
    normalise_family_name,
    normalise_given_names,
    phonetic_code,
    spelling_form,
)

TODAY = date(2009, 1, 1)
PRECISIONS = (0.99, 0.995, 0.999)

Pseudonyms = dict[str, frozenset[bytes]]


def _field(normalise: Any, value: object) -> Any:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return normalise(value)
    except InvalidSubject:
        return None


def _dob(value: object) -> str | None:
    if not isinstance(value, str) or len(value) != 8 or not value.isdigit():
        return None
    iso = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    try:
        return normalise_date_of_birth(iso, today=TODAY)
    except InvalidSubject:
        return None


def normalised(row: Mapping[str, Any]) -> NormalisedSubject:
    return NormalisedSubject(
        family_name=_field(normalise_family_name, row.get("surname")),
        given_names=_field(normalise_given_names, row.get("given_name")),
        date_of_birth=_dob(row.get("date_of_birth")),
    )


@dataclass
class Prepared:
    ids: list[str]
    pseudonyms: list[Pseudonyms]
    keys: int
    seconds: float
    without_keys: int
    partial: Counter[str]
    #: CPU seconds of OPRF work per record, with its number of keys.
    per_record: list[tuple[int, float]]


def prepare(
    rows: Iterable[tuple[str, Mapping[str, Any]]], pseudonymiser: Pseudonymiser | None
) -> Prepared:
    ids: list[str] = []
    out: list[Pseudonyms] = []
    count = 0
    seconds = 0.0
    without = 0
    partial: Counter[str] = Counter()
    per_record: list[tuple[int, float]] = []
    for rec_id, row in rows:
        subject = normalised(row)
        if subject.family_name is None:
            partial["no family name"] += 1
        if subject.date_of_birth is None:
            partial["no valid date of birth"] += 1
        keys = linkage_keys(subject)
        if not keys:
            without += 1
        start = time.process_time()  # CPU time: keys/s per core, whatever else runs
        if pseudonymiser is None:  # --fit: equality of keys is equality of pseudonyms
            elements = {f: frozenset(k.encode() for k in v) for f, v in keys.items()}
        else:  # the gateway's path: one batched OPRF call per signal
            elements = pseudonymiser.pseudonyms_by_family(keys)
        spent = time.process_time() - start
        seconds += spent
        per_record.append((sum(len(v) for v in keys.values()), spent))
        count += sum(len(v) for v in keys.values())
        ids.append(rec_id)
        out.append(elements)
    return Prepared(ids, out, count, seconds, without, partial, per_record)


def index_of(records: Sequence[Pseudonyms]) -> dict[tuple[str, bytes], list[int]]:
    index: dict[tuple[str, bytes], list[int]] = defaultdict(list)
    for position, record in enumerate(records):
        for family, elements in record.items():
            for element in elements:
                index[(family, element)].append(position)
    return index


def candidates(
    index: Mapping[tuple[str, bytes], list[int]], split: int | None
) -> set[tuple[int, int]]:
    """Pairs sharing any key: across the split (two files) or within one file."""
    pairs: set[tuple[int, int]] = set()
    for holders in index.values():
        if len(holders) < 2:
            continue
        for i, x in enumerate(holders):
            for y in holders[i + 1 :]:
                if x == y:
                    continue
                low, high = min(x, y), max(x, y)
                if split is None or (low < split <= high):
                    pairs.add((low, high))
    return pairs


def recall_at(
    scored: Sequence[tuple[float, bool]], total_true: int, precision: float
) -> tuple[float, float]:
    """Best recall (and its threshold) over thresholds whose precision is ≥ `precision`."""
    ordered = sorted(scored, key=lambda p: -p[0])
    best, best_threshold = 0.0, math.inf
    tp = fp = 0
    i = 0
    while i < len(ordered):
        threshold = ordered[i][0]
        while i < len(ordered) and ordered[i][0] == threshold:
            tp += ordered[i][1]
            fp += not ordered[i][1]
            i += 1
        if tp / (tp + fp) >= precision and tp / total_true > best:
            best, best_threshold = tp / total_true, threshold
    return best, best_threshold


@dataclass
class Evaluation:
    name: str
    pairs: list[tuple[int, int]]
    labels: list[bool]
    features: list[dict[str, float]]
    assessments: list[scoring.Assessment]
    total_true: int
    prepared: Prepared
    frequencies: Counter[str]
    top: list[tuple[str, int]]
    split: int | None
    truth: set[tuple[str, str]]


def evaluate(
    name: str,
    rows: list[tuple[str, Mapping[str, Any]]],
    split: int | None,
    truth: set[tuple[str, str]],
    pseudonymiser: Pseudonymiser | None,
) -> Evaluation:
    prepared = prepare(rows, pseudonymiser)
    index = index_of(prepared.pseudonyms)
    freq = {key: len(set(holders)) for key, holders in index.items()}

    def frequency(family: str, element: bytes) -> int:
        return freq.get((family, element), 1)

    pairs = sorted(candidates(index, split))
    ids = prepared.ids
    labels = [(ids[x], ids[y]) in truth or (ids[y], ids[x]) in truth for x, y in pairs]
    recs = prepared.pseudonyms
    feats = [scoring.features(recs[x], recs[y], frequency) for x, y in pairs]
    assessments = [scoring.assess(recs[x], recs[y], frequency) for x, y in pairs]
    largest: dict[str, int] = {}
    for (family, _), count in freq.items():
        largest[family] = max(largest.get(family, 0), count)
    top = sorted(((f"{family}", n) for (family, _), n in freq.items()), key=lambda t: -t[1])
    return Evaluation(
        name,
        pairs,
        labels,
        feats,
        assessments,
        len(truth),
        prepared,
        Counter(largest),
        top,
        split,
        truth,
    )


def report(ev: Evaluation) -> dict[str, float]:
    p = ev.prepared
    print(
        f"\n== {ev.name}: {len(p.ids)} records, {len(ev.pairs)} candidate pairs, "
        f"{ev.total_true} true pairs"
    )
    print(
        f"   records without any key: {p.without_keys}; "
        f"accepted with fewer families: {dict(p.partial)}"
    )
    most = max(p.per_record)
    print(
        f"   keys: {p.keys} ({p.keys / len(p.ids):.1f}/record, at most {most[0]}), "
        f"OPRF {p.keys / p.seconds:,.0f} keys/s per core, "
        f"{p.seconds / len(p.ids) * 1e3:.2f} ms per record"
    )
    print(
        "   largest key frequency per family (records holding one element):", dict(ev.frequencies)
    )
    frequent = sum(1 for _, n in ev.top if n > scoring.HANDFUL)
    print(
        "   most frequent elements (family: records):",
        ", ".join(f"{family}: {n}" for family, n in ev.top[:8]),
        f"; elements held by more than {scoring.HANDFUL} records (down-weighted): {frequent}",
    )
    scored = [(a.score, lab) for a, lab in zip(ev.assessments, ev.labels, strict=True)]
    result: dict[str, float] = {}
    line = "   pseudonyms, score:  " + "  ".join(
        f"R@P≥{pr}: {recall_at(scored, ev.total_true, pr)[0]:.3f}" for pr in PRECISIONS
    )
    print(line)
    for pr in PRECISIONS:
        result[f"score@{pr}"] = recall_at(scored, ev.total_true, pr)[0]
    for tier in ("strong", "possible"):
        accepted = [
            lab
            for a, lab in zip(ev.assessments, ev.labels, strict=True)
            if a.tier == "strong" or (tier == "possible" and a.tier == "possible")
        ]
        tp = sum(accepted)
        precision = tp / len(accepted) if accepted else 1.0
        recall = tp / ev.total_true
        result[f"{tier}:recall"], result[f"{tier}:precision"] = recall, precision
        ceiling = sum(
            lab
            for a, lab in zip(ev.assessments, ev.labels, strict=True)
            if a.evidence_tier == "strong" or (tier == "possible" and a.evidence_tier)
        )
        print(
            f"   tier {tier:>8} (and above): recall {recall:.3f} "
            f"at precision {precision:.4f} ({len(accepted)} pairs; "
            f"the evidence rules alone allow recall {ceiling / ev.total_true:.3f})"
        )
    reachable = sum(ev.labels) / ev.total_true
    result["reachable"] = reachable
    print(
        f"   true pairs sharing any key (what a tier could reach without any evidence "
        f"rule): {reachable:.3f}"
    )
    for tier in ("strong", "possible"):
        recall, precision, count = clustered(ev, tier)
        result[f"{tier}:cluster-recall"] = recall
        print(
            f"   through clusters, tier {tier:>8}: recall {recall:.3f} "
            f"at precision {precision:.4f} ({count} pairs in one match)"
        )
    return result


def _relation(a: str, b: str) -> str:
    if not a or not b:
        return "missing"
    if a == b:
        return "same"
    if deletion_neighbours(a) & deletion_neighbours(b):
        return "typo"
    return "phonetic" if phonetic_code(a) == phonetic_code(b) else "other"


def strong_ceilings(ev: Evaluation, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """What the strong tier could reach if its evidence rule let more kinds of pair in:
    a pair's names compared in plaintext (this benchmark may: it is the data set, not
    the gateway), over the candidate pairs whose evidence does not allow `strong` now.
    Each line adds a kind of pair to the one above; the gap to FEBRL4 is the point."""
    subjects = {rec_id: normalised(row) for rec_id, row in rows}
    ids = ev.prepared.ids
    kinds: Counter[tuple[str, str, bool]] = Counter()
    strong = 0
    for (x, y), a, true in zip(ev.pairs, ev.assessments, ev.labels, strict=True):
        if not true:
            continue
        if a.evidence_tier == "strong":
            strong += 1
            continue
        s, t = subjects[ids[x]], subjects[ids[y]]
        family = _relation(
            spelling_form(s.family_name.core) if s.family_name else "",
            spelling_form(t.family_name.core) if t.family_name else "",
        )
        given = _relation(
            first_given_name(s.given_names) if s.given_names else "",
            first_given_name(t.given_names) if t.given_names else "",
        )
        same_date = s.date_of_birth is not None and s.date_of_birth == t.date_of_birth
        kinds[(family, given, same_date)] += 1
    near = ("typo", "phonetic")
    steps = (
        ("a given name one typo off, family name near", lambda f, g: f in near and g == "typo"),
        ("a replaced given name (like twins)", lambda f, g: f in ("same", *near) and g == "other"),
        ("a replaced family name (like namesakes)", lambda f, g: f == "other" and g != "other"),
    )
    print("   strong tier ceiling if its evidence rule also let in, same date of birth:")
    reached = strong
    print(f"     {'(the rule now)':>46}: {reached / ev.total_true:.3f}")
    for name, admits in steps:
        reached += sum(n for (f, g, same), n in kinds.items() if same and admits(f, g))
        print(f"     {name:>46}: {reached / ev.total_true:.3f}")


def clustered(ev: Evaluation, tier: str) -> tuple[float, float, int]:
    """Pairs that end up in one match: the gateway grows a match from every link of
    the tier (a signal joins the cluster of each signal it links to), so the
    coordinator sees all of a person's signals together even where two of them do
    not link directly (FEBRL3's duplicates of one original)."""
    parent = list(range(len(ev.prepared.ids)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (x, y), a in zip(ev.pairs, ev.assessments, strict=True):
        if a.tier == "strong" or (tier == "possible" and a.tier is not None):
            parent[root(x)] = root(y)
    groups: dict[int, list[int]] = defaultdict(list)
    for position in range(len(parent)):
        groups[root(position)].append(position)
    ids, split = ev.prepared.ids, ev.split
    together = [
        (ids[x], ids[y])
        for members in groups.values()
        for i, x in enumerate(members)
        for y in members[i + 1 :]
        if split is None or min(x, y) < split <= max(x, y)
    ]
    truth = ev.truth
    tp = sum((x, y) in truth or (y, x) in truth for x, y in together)
    return tp / ev.total_true, tp / len(together) if together else 1.0, len(together)


def fit(ev: Evaluation, intercept: float | None) -> None:
    """Logistic regression with sign constraints (agree ≥ 0, disagree ≤ 0).

    Unconstrained, the fit learns FEBRL quirks (e.g. a positive weight for names that
    disagree, because FEBRL's few non-matching candidates share other keys): true
    there, wrong for a youth register where many children share a first name and a
    birthday. So: L2 (λ = 1) logistic loss, L-BFGS-B with bounds, intercept free.
    """
    import numpy as np
    from scipy.optimize import minimize

    names = [
        f"{kind}:{family}" for family in scoring.SCORED_FAMILIES for kind in ("agree", "disagree")
    ]
    x = np.array([[f.get(n, 0.0) for n in names] for f in ev.features])
    y = np.where(np.array(ev.labels), 1.0, -1.0)

    def loss(theta: Any) -> tuple[float, Any]:
        w, b = theta[:-1], theta[-1]
        margin = y * (x @ w + b)
        value = np.logaddexp(0.0, -margin).sum() + 0.5 * (w @ w)
        sigma = -y / (1.0 + np.exp(margin))
        grad = np.concatenate([x.T @ sigma + w, [sigma.sum()]])
        return float(value), grad

    fixed = (intercept, intercept) if intercept is not None else (None, None)
    bounds = [(0.0, None) if n.startswith("agree") else (None, 0.0) for n in names] + [fixed]
    start = np.zeros(len(names) + 1)
    start[-1] = intercept or 0.0
    found = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    weights = dict(zip(names, found.x[:-1], strict=True))
    print(f"INTERCEPT = {found.x[-1]:.2f}")
    print(
        "AGREE_WEIGHTS = {"
        + ", ".join(f'"{f}": {weights[f"agree:{f}"]:.2f}' for f in scoring.SCORED_FAMILIES)
        + "}"
    )
    print(
        "DISAGREE_WEIGHTS = {"
        + ", ".join(f'"{f}": {weights[f"disagree:{f}"]:.2f}' for f in scoring.SCORED_FAMILIES)
        + "}"
    )
    # The thresholds are chosen on the scores of the printed (rounded) weights, which
    # are the ones the code stores, so the tiers the benchmark reports are exactly these.
    rounded = np.round(found.x, 2)
    scores = x @ rounded[:-1] + rounded[-1]
    print(f"candidate pairs {len(ev.labels)}, of which true {sum(ev.labels)}")
    # A tier is score ≥ threshold AND the evidence rules, so each threshold is chosen
    # among the pairs whose evidence allows that tier (not over all pairs: that put
    # the strong threshold above pairs the evidence rules had already made safe).
    for tier, pr in (("strong", 0.999), ("possible", 0.995)):
        allowed = ("strong",) if tier == "strong" else ("strong", "possible")
        scored = [
            (score, label)
            for score, label, a in zip(scores.tolist(), ev.labels, ev.assessments, strict=True)
            if a.evidence_tier in allowed
        ]
        recall, threshold = recall_at(scored, ev.total_true, pr)
        print(
            f"{tier.upper()}_THRESHOLD (precision ≥ {pr} among pairs with {tier} evidence): "
            f"{threshold:.2f} (recall {recall:.3f}; evidence alone allows "
            f"{sum(label for _, label in scored) / ev.total_true:.3f})"
        )


def baselines(name: str, a: Any, b: Any | None, links: Any, total_true: int) -> None:
    """Plaintext recordlinkage on name + date of birth, same metric."""
    import recordlinkage as rl

    indexer = rl.Index()
    for column in ("surname", "given_name", "date_of_birth"):
        indexer.block(column)
    indexer.sortedneighbourhood("surname", window=7)
    pairs = indexer.index(a) if b is None else indexer.index(a, b)
    compare = rl.Compare()
    compare.string("given_name", "given_name", method="jarowinkler", label="given")
    compare.string("surname", "surname", method="jarowinkler", label="surname")
    compare.string("date_of_birth", "date_of_birth", method="levenshtein", label="dob")
    vectors = compare.compute(pairs, a) if b is None else compare.compute(pairs, a, b)
    vectors = vectors.fillna(0.0)
    truth = set(map(tuple, links.tolist()))
    labels = [((x, y) in truth) or ((y, x) in truth) for x, y in vectors.index]
    sums = vectors.sum(axis=1).tolist()
    binary = (vectors >= 0.85).astype(int)
    ecm = rl.ECMClassifier(binarize=None)
    ecm.fit(binary)
    probs = ecm.prob(binary).tolist()
    print(
        f"   baselines on {len(pairs)} plaintext candidate pairs "
        "(blocking on each field + sorted neighbourhood):"
    )
    for method, values in (("ECM (plaintext)", probs), ("sum of similarities (plaintext)", sums)):
        scored = list(zip(values, labels, strict=True))
        print(
            f"   {method:>32}: "
            + "  ".join(
                f"R@P≥{pr}: {recall_at(scored, total_true, pr)[0]:.3f}" for pr in PRECISIONS
            )
        )


#: A subject that yields every family, with long names (more deletion neighbours).
EVERY_FAMILY = {
    "bsn": "123456782",
    "familyName": "van der Heijden-Bakker",
    "givenNames": "Anna-Catharina Maria",
    "dateOfBirth": "2008-02-11",
}


def oprf_cost(pseudonymiser: Pseudonymiser, rounds: int = 5, calls: int = 40) -> float:
    """CPU ms of OPRF work for `EVERY_FAMILY`: the batched path the gateway takes, and
    key by key (the path before), best of `rounds`; normalisation is timed apart."""
    keys = derive_linkage_keys(EVERY_FAMILY, today=TODAY)
    flat = [k for values in keys.values() for k in values]

    def best(call: Any) -> float:
        times = []
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(calls):
                call()
            times.append((time.process_time() - start) / calls)
        return min(times)

    batched = best(lambda: pseudonymiser.pseudonyms_by_family(keys))
    one_by_one = best(lambda: [pseudonymiser.pseudonym(k) for k in flat])
    normalise = best(lambda: derive_linkage_keys(EVERY_FAMILY, today=TODAY))
    print(
        f"\n== OPRF cost of one signal with every family ({len(keys)} families, "
        f"{len(flat)} keys; CPU time, one core)"
    )
    print(
        f"   batched (gateway): {batched * 1e3:.2f} ms/signal, {len(flat) / batched:,.0f} keys/s; "
        f"key by key: {one_by_one * 1e3:.2f} ms, {len(flat) / one_by_one:,.0f} keys/s; "
        f"normalisation + match keys: {normalise * 1e3:.2f} ms"
    )
    dutch_signals(pseudonymiser, batched / len(flat))
    return batched


def dutch_signals(pseudonymiser: Pseudonymiser, per_key: float) -> None:
    """Keys and OPRF time per signal over the Dutch test set (every field given on most
    records: the signals a meldpunt receives), with every family and without `names_del`
    (a category may leave it out in the policy: the gateway evaluates only the
    families a category lists)."""
    from tests.linkage.dutch_set import population

    subjects = [r.subject for seed in range(1, 6) for r in population(seed)[0]]
    every = [derive_linkage_keys(s) for s in subjects]  # today: the set has recent dates
    print(f"   the Dutch test set ({len(subjects)} signals), OPRF CPU per signal:")
    for label, drop in (("every family", ()), ("without names_del", ("names_del",))):
        kept = [{f: v for f, v in keys.items() if f not in drop} for keys in every]
        counts = sorted(sum(len(v) for v in keys.values()) for keys in kept)
        start = time.process_time()
        for keys in kept:
            pseudonymiser.pseudonyms_by_family(keys)
        mean = (time.process_time() - start) / len(kept)
        p50, p95 = counts[len(counts) // 2], counts[int(0.95 * len(counts))]
        print(
            f"     {label:>17}: keys median {p50}, p95 {p95}, max {counts[-1]}; "
            f"mean {mean * 1e3:.2f} ms, median ≈ {p50 * per_key * 1e3:.2f} ms, "
            f"p95 ≈ {p95 * per_key * 1e3:.2f} ms, max ≈ {counts[-1] * per_key * 1e3:.2f} ms"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fit", action="store_true", help="fit the scoring weights on FEBRL4 and print them"
    )
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--intercept", type=float, default=None, help="fix the intercept (--fit)")
    args = parser.parse_args(argv)

    from recordlinkage.datasets import load_febrl3, load_febrl4

    pseudonymiser = Pseudonymiser(oprf.random_scalar(), kid="bench")
    print("families:", ", ".join(LINKAGE_FAMILIES))
    a, b, links4 = load_febrl4(return_links=True)
    rows4 = [(i, r) for i, r in a.to_dict("index").items()] + [
        (i, r) for i, r in b.to_dict("index").items()
    ]
    truth4 = set(map(tuple, links4.tolist()))
    if args.fit:
        ev4 = evaluate("FEBRL4", rows4, len(a), truth4, None)
        fit(ev4, intercept=args.intercept)
        return
    ev4 = evaluate(
        "FEBRL4 (tuning: files A and B as two partners)", rows4, len(a), truth4, pseudonymiser
    )
    results4 = report(ev4)
    strong_ceilings(ev4, rows4)
    cost = oprf_cost(pseudonymiser)
    if not args.no_baselines:
        baselines("FEBRL4", a, b, links4, len(truth4))

    c, links3 = load_febrl3(return_links=True)
    rows3 = list(c.to_dict("index").items())
    truth3 = set(map(tuple, links3.tolist()))
    ev3 = evaluate(
        "FEBRL3 (held out: one file, duplicates within it)", rows3, None, truth3, pseudonymiser
    )
    results3 = report(ev3)
    strong_ceilings(ev3, rows3)
    if not args.no_baselines:
        baselines("FEBRL3", c, None, links3, len(truth3))
    print("\n== goals")
    print(
        f"   FEBRL4 possible tier recall {results4['possible:recall']:.3f} "
        f"at precision {results4['possible:precision']:.4f} (goal ≥ 0.85 at ≥ 0.995)"
    )
    print(
        f"   FEBRL4 strong tier recall {results4['strong:recall']:.3f} "
        f"at precision {results4['strong:precision']:.4f} (goal ≥ 0.72 at ≥ 0.999)"
    )
    for tier in ("possible", "strong"):
        gap = results4[f"{tier}:recall"] - results3[f"{tier}:recall"]
        cluster_gap = results4[f"{tier}:cluster-recall"] - results3[f"{tier}:cluster-recall"]
        print(
            f"   FEBRL3 {tier} recall {results3[f'{tier}:recall']:.3f}, "
            f"precision {results3[f'{tier}:precision']:.4f} (gap {gap:+.3f}, goal within 0.05); "
            f"through clusters {results3[f'{tier}:cluster-recall']:.3f} (gap {cluster_gap:+.3f})"
        )
    print(
        f"   pairs any tier could reach: FEBRL4 {results4['reachable']:.3f}, FEBRL3 "
        f"{results3['reachable']:.3f} (gap {results4['reachable'] - results3['reachable']:+.3f})"
    )
    print(f"   OPRF work for a signal with every family: {cost * 1e3:.2f} ms (goal < 2 ms)")


if __name__ == "__main__":
    main()
