"""Which matches are linked into a case: the derived "linked" state of a match.

A match counts as linked once a case was made from it (`cases.match_id`) or a case
holds one of its signals, AND every one of its active signals is in some case: a new
signal that joins a match already in a case makes it unlinked again, so the queue shows
it (the coordinator adds the signal to the case from the match page). Derived on every
read, never stored, so unlinking the last signal or erasing a case gives the match its
reviewed state back.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cases.models import CaseRow, CaseSignalRow
from gateway.matching.service import Match, MatchLinks
from gateway.signals.models import SignalRow


def linked_matches(session: Session, matches: Sequence[Match]) -> dict[str, MatchLinks]:
    """For each of `matches` (by id): which of its signals some case holds, and whether a
    case was made from it."""
    if not matches:
        return {}
    ids = [m.id for m in matches]
    made = set(session.execute(select(CaseRow.match_id).where(CaseRow.match_id.in_(ids))).scalars())
    signal_ids = sorted({s.id for m in matches for s in m.signals})
    in_cases = set(
        session.execute(
            select(SignalRow.id)
            .join(CaseSignalRow, CaseSignalRow.signal_pk == SignalRow.pk)
            .where(SignalRow.id.in_(signal_ids))
        ).scalars()
    )
    return {
        m.id: MatchLinks(
            in_cases=frozenset(s.id for s in m.signals if s.id in in_cases),
            case_made=m.id in made,
        )
        for m in matches
    }
