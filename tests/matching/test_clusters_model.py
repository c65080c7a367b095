"""Clusters against a model: random submissions, then compare with connected components.

Without twins (every person has their own BSN and name/date-of-birth pseudonyms), the
matches must be exactly the connected components, of two or more signals, of the graph
whose edges join signals of different organisations sharing a pseudonym, whatever the
order of arrival.
"""

from __future__ import annotations

import random

from gateway.db import Database
from gateway.matching.service import list_matches
from tests.matching.test_matching import submit
from tests.signals.factory import KINDS, NOW, person


def components(signals: dict[str, tuple[str, dict[str, bytes]]]) -> set[frozenset[str]]:
    parent = {sid: sid for sid in signals}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    ids = list(signals)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            (org_a, keys_a), (org_b, keys_b) = signals[a], signals[b]
            shared = any(keys_b.get(f) == e for f, e in keys_a.items())
            if org_a != org_b and shared:
                parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for sid in ids:
        groups.setdefault(find(sid), set()).add(sid)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def test_matches_are_the_connected_components(database: Database) -> None:
    rng = random.Random(20260301)
    orgs = sorted(KINDS)
    submitted: dict[str, tuple[str, dict[str, bytes]]] = {}
    kinds: set[str] = set()
    for _ in range(4):  # rounds with fresh people: a merge needs both keys to arrive late
        people = [person() for _ in range(3)]
        for _ in range(15):
            subject = rng.choice(people)
            shape = rng.choices([("bsn",), ("name_dob",), ("bsn", "name_dob")], [4, 4, 1])[0]
            keys = {f: subject[f] for f in shape}
            org = rng.choice(orgs)
            created = submit(database, org, keys, now=NOW)
            submitted[created.signal.id] = (org, keys)
            kinds.update(change.kind for change in created.matches)
        for subject in people:  # late signals with both keys bridge what is apart
            keys, org = dict(subject), rng.choice(orgs)
            created = submit(database, org, keys, now=NOW)
            submitted[created.signal.id] = (org, keys)
            kinds.update(change.kind for change in created.matches)
    with database.transaction(write=False) as session:
        matches = list_matches(session, None, 200).items
    found = {frozenset(s.id for s in m.signals) for m in matches}
    assert found == components(submitted)
    assert kinds == {"created", "grown", "merged"}  # the data exercised every change
