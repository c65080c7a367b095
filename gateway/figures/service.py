"""FiguresService: counts per year or quarter, protected, audited as an export.

What is counted, per period (a calendar year or quarter), from metadata only:
- signals by partner kind and category (a two-way table with its totals),
- matches made, cases opened, cases closed (by outcome, with the total), the median
  number of days from a case's first signal to the case, shares made,
  signals withdrawn and signals erased at the end of their retention (audit log).

Every count below the policy's threshold is published as "< t"; further cells are left
out where a hidden count would otherwise follow from the others (`suppression.protect`),
also across the four quarters of a year and the year itself, so asking by year and by
quarter gives nothing away either. Periods must start and end on period boundaries and
be at least the policy's `minimum_period_days` long: arbitrary dates would let two
overlapping requests be subtracted.

For the privacy officer (`oversight`, needs `audit.read`): payload reads per coordinator
and purpose (protected: they count reads of people's signals), refusals by policy rule,
and rate-limit hits per client, all from the audit log.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.audit.models import AuditEntryRow
from gateway.cases.models import CaseRow, CaseSignalRow, ShareRow
from gateway.errors import InvalidInput
from gateway.figures.suppression import Cell, Key, one_way, protect, two_way
from gateway.matching.models import MatchRow
from gateway.policy.audited import denial_event, policy_denied
from gateway.policy.engine import Decision, PolicyEngine, Resource
from gateway.signals.models import SignalRow

Granularity = Literal["year", "quarter"]
FIGURES_READ = "figures.read"
AUDIT_READ = "audit.read"
#: At most this many years in one request (bounds the work of one request).
MAX_YEARS = 10
OTHER = "other"
ALL = "all"
#: The audit action of a request refused for its rate limit (see `gateway.ratelimit`).
RATE_LIMITED = "request.rate-limited"


class PeriodRefused(InvalidInput):
    """The period asked for cannot be published: it must start on the first day of a year
    or quarter, end on the last day of one, not be shorter than the policy's minimum
    period, and span at most ten years."""

    slug = "period-refused"
    title = "The period cannot be published"


@dataclass(frozen=True)
class Period:
    label: str  # "2026" or "2026-Q3"
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def year(self) -> int:
        return self.start.year


@dataclass(frozen=True)
class Row:
    """One published cell; `count` None means "below the threshold"."""

    period: str
    dimension: str
    value: str
    count: int | None


@dataclass(frozen=True)
class Figures:
    start: date
    end: date
    by: Granularity
    threshold: int
    periods: tuple[Period, ...]
    rows: tuple[Row, ...]
    kinds: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()

    def get(self, period: str, dimension: str, value: str = ALL) -> Row | None:
        for row in self.rows:
            if (row.period, row.dimension, row.value) == (period, dimension, value):
                return row
        return None


@dataclass(frozen=True)
class Table:
    """A protected table for the officer's charts: rows x columns, or one column."""

    title: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    #: (row, column) -> count, None for "< t"; a cell left out is absent.
    cells: dict[tuple[str, str], int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Oversight:
    threshold: int
    payload_reads: Table
    refusals: Table
    rate_limits: Table


# -- periods ------------------------------------------------------------------------------


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _next_quarter(start: date) -> date:
    return date(start.year + 1, 1, 1) if start.month == 10 else date(start.year, start.month + 3, 1)


def quarters_of(year: int) -> list[Period]:
    found = []
    for q in range(4):
        start = date(year, 3 * q + 1, 1)
        found.append(Period(f"{year}-Q{q + 1}", start, _next_quarter(start) - timedelta(days=1)))
    return found


def year_of(year: int) -> Period:
    return Period(str(year), date(year, 1, 1), date(year, 12, 31))


def periods_between(start: date, end: date, by: Granularity, minimum_days: int) -> list[Period]:
    """The periods from `start` to `end` (inclusive), or `PeriodRefused`."""
    if end < start:
        raise PeriodRefused("`to` is before `from`.")
    if end.year - start.year + 1 > MAX_YEARS:
        raise PeriodRefused(f"At most {MAX_YEARS} years in one request.")
    if by == "year":
        if (start.month, start.day) != (1, 1) or (end.month, end.day) != (12, 31):
            raise PeriodRefused(
                "By year, `from` must be the 1st of January and `to` the 31st of December."
            )
        found = [year_of(y) for y in range(start.year, end.year + 1)]
    else:
        if start != _quarter_start(start) or end + timedelta(days=1) != _next_quarter(
            _quarter_start(end)
        ):
            raise PeriodRefused(
                "By quarter, `from` must be the first day of a quarter and `to` the last day "
                "of one."
            )
        found = [
            p
            for y in range(start.year, end.year + 1)
            for p in quarters_of(y)
            if start <= p.start and p.end <= end
        ]
    short = [p for p in found if p.days < minimum_days]
    if short:
        raise PeriodRefused(
            f"Periods shorter than {minimum_days} days are not published "
            f"({short[0].label} has {short[0].days})."
        )
    return found


def _moment(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- the service --------------------------------------------------------------------------


class FiguresService:
    def __init__(self, engine: PolicyEngine) -> None:
        self.engine = engine

    def _settings(self) -> tuple[int, int, tuple[str, ...]]:
        figures = self.engine.policy.figures
        return figures.threshold, figures.minimum_period_days, tuple(figures.outcomes)

    def _allow(self, session: Session, actor: Actor, action: str) -> Decision:
        decision = self.engine.decide(actor, action, Resource(type="figures"))
        if not decision.allowed:
            session.rollback()
            record_event(session, denial_event(actor, Resource(type="figures"), decision))
            session.commit()
            raise policy_denied(decision)
        return decision

    def may(self, actor: Actor, action: str = FIGURES_READ) -> bool:
        return self.engine.decide(actor, action, Resource(type="figures")).allowed

    def publish(
        self,
        session: Session,
        actor: Actor,
        start: date,
        end: date,
        by: Granularity,
        *,
        export: str = "json",
    ) -> Figures:
        """The figures of the periods from `start` to `end`, protected; audited as an
        export in `export` format (the caller commits)."""
        decision = self._allow(session, actor, FIGURES_READ)
        threshold, minimum_days, outcomes = self._settings()
        periods = periods_between(start, end, by, minimum_days)
        kinds = tuple(self.engine.policy.organisation_kinds)
        # a test category keeps no signal: it would be a column of zeros
        categories = tuple(n for n, c in self.engine.policy.categories.items() if not c.test)
        years = sorted({p.year for p in periods})
        counts = _Counts.gather(session, years, outcomes)
        kinds = tuple(dict.fromkeys([*kinds, *sorted(counts.kinds)]))
        categories = tuple(dict.fromkeys([*categories, *sorted(counts.categories)]))
        outcome_values = (*outcomes, OTHER)
        values, hidden, primary, withheld = _protect_years(
            counts, years, kinds, categories, outcome_values, threshold
        )
        wanted = {p.label for p in periods}
        rows: list[Row] = []
        for key, value in values.items():
            period, dimension, name = key
            if period not in wanted or key in withheld:
                continue
            if key in primary:
                rows.append(Row(period, dimension, name, None))
            elif key not in hidden:
                rows.append(Row(period, dimension, name, value))
        for period in periods:
            opened = (period.label, "cases.opened", ALL)
            days = counts.days_to_case.get(period.label, [])
            if len(days) >= threshold and opened not in hidden and opened not in withheld:
                median = round(statistics.median(days))
                rows.append(Row(period.label, "cases.daysToCase.median", "days", median))
        order = {p.label: i for i, p in enumerate(periods)}
        rows.sort(key=lambda r: order[r.period])
        record_event(
            session,
            AuditEvent(
                action=decision.action,
                outcome="success",
                actor=actor,
                resource_type="figures",
                detail={
                    "step": "export",
                    "format": export,
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                    "by": by,
                    "rows": len(rows),
                },
                **decision.audit_fields(),
            ),
        )
        return Figures(
            start, end, by, threshold, tuple(periods), tuple(rows), kinds, categories,
            outcome_values,
        )  # fmt: skip

    def oversight(
        self, session: Session, actor: Actor, start: date, end: date, *, export: str = "html"
    ) -> Oversight:
        """The privacy officer's charts over `start`..`end` (needs `audit.read`)."""
        decision = self._allow(session, actor, AUDIT_READ)
        threshold, minimum_days, _ = self._settings()
        if end < start or (end - start).days + 1 < minimum_days:
            raise PeriodRefused(f"Periods shorter than {minimum_days} days are not published.")
        since, until = _moment(start), _moment(end + timedelta(days=1))
        reads: Counter[tuple[str, str]] = Counter()
        refusals: Counter[tuple[str, str]] = Counter()
        limited: Counter[tuple[str, str]] = Counter()
        stmt = select(AuditEntryRow.action, AuditEntryRow.outcome, AuditEntryRow.data).where(
            AuditEntryRow.created_at >= since, AuditEntryRow.created_at < until
        )
        for action, outcome, data in session.execute(
            stmt.where(
                (AuditEntryRow.outcome == "denied")
                | AuditEntryRow.action.in_(("payload.read", RATE_LIMITED))
            )
        ):
            entry = json.loads(data)
            actor_id = str((entry.get("actor") or {}).get("id", "?"))
            if action == RATE_LIMITED:
                limited[(actor_id, ALL)] += int((entry.get("detail") or {}).get("count", 1))
            elif action == "payload.read" and outcome == "success":
                reads[(actor_id, str(entry.get("purpose") or "-"))] += 1
            elif outcome == "denied":
                rule = (entry.get("policy") or {}).get("rule")
                if rule:
                    refusals[(str(rule), ALL)] += 1
        record_event(
            session,
            AuditEvent(
                action="audit.read",
                outcome="success",
                actor=actor,
                resource_type="figures",
                detail={
                    "step": "oversight",
                    "format": export,
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                },
                **decision.audit_fields(),
            ),
        )
        return Oversight(
            threshold,
            _protected_table("payload-reads", reads, threshold),
            _plain_table("refusals", refusals),
            _plain_table("rate-limits", limited),
        )


def _plain_table(title: str, counts: Counter[tuple[str, str]]) -> Table:
    rows = tuple(
        sorted(
            {r for r, _ in counts},
            key=lambda r: (-sum(v for (rr, _), v in counts.items() if rr == r), r),
        )
    )
    return Table(title, rows, (ALL,), {k: v for k, v in counts.items()})


def _protected_table(title: str, counts: Counter[tuple[str, str]], threshold: int) -> Table:
    """A rows x columns table with its totals (row ALL / column ALL), protected."""
    rows = tuple(sorted({r for r, _ in counts}))
    columns = tuple(sorted({c for _, c in counts}))
    if not rows:
        return Table(title, (), ())
    cells = two_way(dict(counts), rows, columns)
    protection = protect(cells, threshold)
    shown: dict[tuple[str, str], int | None] = {}
    if not protection.withheld:
        for cell in cells:
            r, c = cell.key
            key = (r or ALL, c or ALL)
            if cell.key in protection.primary:
                shown[key] = None
            elif cell.key not in protection.hidden:
                shown[key] = cell.value
    return Table(title, (*rows, ALL), (*columns, ALL), shown)


# -- counting -----------------------------------------------------------------------------


@dataclass
class _Counts:
    """Raw counts by (period label, dimension, value), for whole years and their quarters."""

    cells: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    days_to_case: dict[str, list[float]] = field(default_factory=dict)
    kinds: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)

    def add(self, when: datetime | None, dimension: str, value: str = ALL) -> None:
        if when is None:
            return
        moment = _utc(when)
        quarter = f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"
        self.cells[(str(moment.year), dimension, value)] += 1
        self.cells[(quarter, dimension, value)] += 1

    @classmethod
    def gather(cls, session: Session, years: Sequence[int], outcomes: Iterable[str]) -> _Counts:
        found = cls()
        since, until = _moment(date(years[0], 1, 1)), _moment(date(years[-1] + 1, 1, 1))
        named = set(outcomes)

        def within(column: Any) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
            return (column >= since, column < until)

        for created, kind, category in session.execute(
            select(SignalRow.created_at, SignalRow.organisation_kind, SignalRow.category).where(
                *within(SignalRow.created_at)
            )
        ):
            found.kinds.add(kind)
            found.categories.add(category)
            found.add(created, "signals.partnerKind.category", f"{kind}/{category}")
        for (withdrawn,) in session.execute(
            select(SignalRow.withdrawn_at).where(
                SignalRow.withdrawn_at.is_not(None), *within(SignalRow.withdrawn_at)
            )
        ):
            found.add(withdrawn, "signals.withdrawn")
        for (erased,) in session.execute(
            select(AuditEntryRow.created_at).where(
                AuditEntryRow.action == "signal.expire",
                AuditEntryRow.outcome == "success",
                *within(AuditEntryRow.created_at),
            )
        ):
            found.add(erased, "signals.erased")
        for (created,) in session.execute(
            select(MatchRow.created_at).where(
                MatchRow.merged_into.is_(None), *within(MatchRow.created_at)
            )
        ):
            found.add(created, "matches")
        first_signal = (
            select(CaseSignalRow.case_pk, SignalRow.created_at)
            .join(SignalRow, SignalRow.pk == CaseSignalRow.signal_pk)
            .join(CaseRow, CaseRow.pk == CaseSignalRow.case_pk)
            .where(*within(CaseRow.created_at))
        )
        firsts: dict[int, datetime] = {}
        for case_pk, signal_created in session.execute(first_signal):
            moment = _utc(signal_created)
            if case_pk not in firsts or moment < firsts[case_pk]:
                firsts[case_pk] = moment
        for pk, created in session.execute(
            select(CaseRow.pk, CaseRow.created_at).where(*within(CaseRow.created_at))
        ):
            found.add(created, "cases.opened")
            if pk in firsts:
                days = max(0.0, (_utc(created) - firsts[pk]).total_seconds() / 86400)
                moment = _utc(created)
                for label in (str(moment.year), f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"):
                    found.days_to_case.setdefault(label, []).append(days)
        for updated, outcome in session.execute(
            select(CaseRow.updated_at, CaseRow.outcome).where(
                CaseRow.status == "closed", *within(CaseRow.updated_at)
            )
        ):
            name = (outcome or "").strip().lower()
            found.add(updated, "cases.closed.outcome", name if name in named else OTHER)
        for (shared,) in session.execute(
            select(ShareRow.shared_at).where(
                ShareRow.status == "shared",
                ShareRow.shared_at.is_not(None),
                *within(ShareRow.shared_at),
            )
        ):
            found.add(shared, "shares")
        return found


SINGLE = ("matches", "cases.opened", "shares", "signals.withdrawn", "signals.erased")


def _protect_years(
    counts: _Counts,
    years: Sequence[int],
    kinds: Sequence[str],
    categories: Sequence[str],
    outcomes: Sequence[str],
    threshold: int,
) -> tuple[dict[Key, int], set[Key], frozenset[Key], set[Key]]:
    """Every cell of every year and its quarters, and which are hidden: each period's
    tables and, for every cell, "the year is the sum of its quarters" are protected in
    turn until no table asks to hide more (hidden sets only grow, so this ends)."""
    tables: list[list[Cell]] = []
    for year in years:
        labels = [p.label for p in quarters_of(year)] + [str(year)]
        for label in labels:
            inner = {
                (k, c): counts.cells[(label, "signals.partnerKind.category", f"{k}/{c}")]
                for k in kinds
                for c in categories
            }
            tables.append(
                [_rekey(cell, label) for cell in two_way(inner, list(kinds), list(categories))]
            )
            closed = [
                (
                    (label, "cases.closed.outcome", o),
                    counts.cells[(label, "cases.closed.outcome", o)],
                )
                for o in outcomes
            ]
            total = sum(v for _, v in closed)
            tables.append(one_way(closed, ((label, "cases.closed", ALL), total)))
    values: dict[Key, int] = {}
    for table in tables:
        for cell in table:
            values[cell.key] = cell.value
    for year in years:
        for label in [p.label for p in quarters_of(year)] + [str(year)]:
            for dimension in SINGLE:
                values[(label, dimension, ALL)] = counts.cells[(label, dimension, ALL)]
    # the year is the sum of its quarters, for every cell
    positions = {(d, v) for (_, d, v) in values}
    for year in years:
        quarters = [p.label for p in quarters_of(year)]
        for dimension, value in sorted(positions):
            parts = [((q, dimension, value), values[(q, dimension, value)]) for q in quarters]
            whole = (str(year), dimension, value)
            tables.append(one_way(parts, (whole, values[whole])))
    primary = frozenset(k for k, v in values.items() if v < threshold)
    hidden: set[Key] = set(primary)
    withheld: set[Key] = set()
    changed = True
    while changed:
        changed = False
        for table in tables:
            protection = protect(table, threshold, hidden)
            if protection.withheld:
                keys = {c.key for c in table}
                if not keys <= withheld:
                    withheld |= keys
                    hidden |= keys
                    changed = True
                continue
            if not protection.hidden <= hidden:
                hidden |= protection.hidden
                changed = True
    return values, hidden, primary, withheld


def _rekey(cell: Cell, label: str) -> Cell:
    """A two-way table's cell under its published name (period, dimension, value)."""
    row, column = cell.key
    if row is not None and column is not None:
        key: Key = (label, "signals.partnerKind.category", f"{row}/{column}")
    elif row is not None:
        key = (label, "signals.partnerKind", row)
    elif column is not None:
        key = (label, "signals.category", column)
    else:
        key = (label, "signals", ALL)
    return Cell(key, cell.u, cell.v, cell.sign, cell.value)
