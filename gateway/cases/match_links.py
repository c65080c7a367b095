"""Which matches are linked into a case: the derived "linked" state of a match.

A match counts as linked once a case was made from it (`cases.match_id`) or a case
holds one of its signals. Derived on every read, never stored, so unlinking the last
signal or erasing a case gives the match its reviewed state back.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.cases.models import CaseRow, CaseSignalRow
from gateway.matching.service import Match
from gateway.signals.models import SignalRow


def linked_matches(session: Session, matches: Sequence[Match]) -> set[str]:
    """The ids of those of `matches` that a case was made from or holds a signal of."""
    if not matches:
        return set()
    ids = [m.id for m in matches]
    linked = set(
        session.execute(select(CaseRow.match_id).where(CaseRow.match_id.in_(ids))).scalars()
    )
    signal_ids = sorted({s.id for m in matches for s in m.signals})
    in_cases = set(
        session.execute(
            select(SignalRow.id)
            .join(CaseSignalRow, CaseSignalRow.signal_pk == SignalRow.pk)
            .where(SignalRow.id.in_(signal_ids))
        ).scalars()
    )
    linked |= {m.id for m in matches if any(s.id in in_cases for s in m.signals)}
    return {i for i in linked if i is not None}
