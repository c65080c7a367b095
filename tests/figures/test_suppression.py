"""Small-count suppression against a brute-force attacker.

The attacker sees what the figures publish of a table — the numbers, "< t" for the
primary cells, and the absence of the complementary ones (so those are at least t) —
and enumerates every table of non-negative integers consistent with it. The property:
no hidden cell has only one value left. The enumeration bounds each hidden inner cell
by the largest true inner value plus one: if a hidden cell can take another value at
all, a table that moves every cell by at most one already shows it (a conformal unit
cycle), so the bound loses nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.figures.suppression import Cell, Protection, one_way, protect, recoverable, two_way

LESS = "less"  # published as "< t"
ABSENT = "absent"  # left out: at least t


def published(cells: list[Cell], protection: Protection) -> dict[Hashable, object]:
    return {
        c.key: (LESS if c.key in protection.primary else ABSENT)
        if c.key in protection.hidden
        else c.value
        for c in cells
    }


def fits(value: int, shown: object, threshold: int) -> bool:
    if shown == LESS:
        return 0 <= value < threshold
    if shown == ABSENT:
        return value >= threshold
    return value == shown


def feasible_two_way(
    rows: int, cols: int, shown: Mapping[Hashable, object], threshold: int, cap: int
) -> dict[Hashable, set[int]]:
    """Every value each cell takes over all tables consistent with `shown`: the tables
    are enumerated row by row, as column sums so far (forward) and the sums from which
    the remaining rows can still finish a consistent table (backward)."""
    values: dict[Hashable, set[int]] = {k: set() for k in shown}

    def cell_range(key: Hashable) -> list[int]:
        shown_value = shown[key]
        if isinstance(shown_value, int):
            return [shown_value]
        return [v for v in range(cap + 1) if fits(v, shown_value, threshold)]

    options = [
        [
            combo
            for combo in itertools.product(*(cell_range((r, c)) for c in range(cols)))
            if fits(sum(combo), shown[(r, None)], threshold)
        ]
        for r in range(rows)
    ]

    def add(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(x + y for x, y in zip(a, b, strict=True))

    forward = [{(0,) * cols}]
    for r in range(rows):
        forward.append({add(s, o) for s in forward[r] for o in options[r]})
    done = {
        s
        for s in forward[rows]
        if all(fits(s[c], shown[(None, c)], threshold) for c in range(cols))
        and fits(sum(s), shown[(None, None)], threshold)
    }
    backward: list[set[tuple[int, ...]]] = [set() for _ in range(rows)] + [done]
    for r in reversed(range(rows)):
        backward[r] = {
            s for s in forward[r] if any(add(s, o) in backward[r + 1] for o in options[r])
        }
    for r in range(rows):
        for s in backward[r]:
            for o in options[r]:
                if add(s, o) in backward[r + 1]:
                    for c in range(cols):
                        values[(r, c)].add(o[c])
                    values[(r, None)].add(sum(o))
    for s in done:
        for c in range(cols):
            values[(None, c)].add(s[c])
        values[(None, None)].add(sum(s))
    return values


def feasible_one_way(
    parts: int, shown: Mapping[Hashable, object], threshold: int, cap: int
) -> dict[Hashable, set[int]]:
    values: dict[Hashable, set[int]] = {k: set() for k in shown}
    ranges = [range(cap + 1) if not isinstance(shown[i], int) else [shown[i]] for i in range(parts)]
    for combo in itertools.product(*ranges):
        if not all(fits(v, shown[i], threshold) for i, v in enumerate(combo)):
            continue
        if not fits(sum(combo), shown["total"], threshold):
            continue
        for i, v in enumerate(combo):
            values[i].add(v)
        values["total"].add(sum(combo))
    return values


def check(
    cells: list[Cell], protection: Protection, values: dict[Hashable, set[int]], t: int
) -> None:
    truth = {c.key: c.value for c in cells}
    for key, shown in published(cells, protection).items():
        assert truth[key] in values[key]  # the real table is among the candidates
        if isinstance(shown, int):
            assert shown >= t, "a number below the threshold is published"
        else:
            assert len(values[key]) > 1, f"hidden cell {key} is recoverable: {values[key]}"
    assert protection.primary == {c.key for c in cells if c.value < t}


tables = st.integers(1, 3).flatmap(
    lambda rows: st.integers(1, 3).flatmap(
        lambda cols: st.tuples(
            st.just(rows),
            st.just(cols),
            st.lists(
                st.lists(st.integers(0, 9), min_size=cols, max_size=cols),
                min_size=rows,
                max_size=rows,
            ),
        )
    )
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables, st.integers(2, 5))
def test_no_hidden_cell_of_a_two_way_table_can_be_recovered(
    table: tuple[int, int, list[list[int]]], threshold: int
) -> None:
    rows, cols, data = table
    inner = {(r, c): data[r][c] for r in range(rows) for c in range(cols)}
    cells = two_way(inner, range(rows), range(cols))
    protection = protect(cells, threshold)
    if protection.withheld:
        return  # nothing is published
    shown = published(cells, protection)
    values = feasible_two_way(rows, cols, shown, threshold, max(inner.values()) + 1)
    check(cells, protection, values, threshold)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=5), st.integers(2, 5))
def test_no_hidden_cell_of_a_one_way_table_can_be_recovered(
    parts: list[int], threshold: int
) -> None:
    cells = one_way(list(enumerate(parts)), ("total", sum(parts)))
    protection = protect(cells, threshold)
    if protection.withheld:
        return
    values = feasible_one_way(len(parts), published(cells, protection), threshold, max(parts) + 1)
    check(cells, protection, values, threshold)


def test_a_single_small_cell_takes_a_partner_and_its_total_stays() -> None:
    cells = one_way([("a", 2), ("b", 40), ("c", 9)], ("total", 51))
    protection = protect(cells, 5)
    assert protection.primary == {"a"}
    assert protection.complementary == {"c"}  # the smaller neighbour, not the 40
    assert not protection.withheld


def test_nothing_small_hides_nothing() -> None:
    cells = two_way({(0, 0): 7, (0, 1): 9, (1, 0): 12, (1, 1): 5}, range(2), range(2))
    protection = protect(cells, 5)
    assert protection.hidden == frozenset()


def test_a_lone_small_cell_inside_a_two_way_table_takes_a_rectangle() -> None:
    inner = {(0, 0): 1, (0, 1): 20, (1, 0): 30, (1, 1): 40}
    cells = two_way(inner, range(2), range(2))
    protection = protect(cells, 5)
    assert protection.primary == {(0, 0)}
    assert len(protection.hidden) >= 4
    assert recoverable(cells, protection.hidden, protection.primary, 5) == []


def test_the_degree_rule_alone_is_not_enough() -> None:
    """Two hidden cycles joined by one hidden cell: every line has two hidden cells, yet
    the joining cell is a bridge and its value follows from the totals."""
    rows, cols = range(4), range(4)
    inner = {(r, c): 50 for r in rows for c in cols}
    small = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)]
    for key in small:
        inner[key] = 1
    cells = two_way(inner, rows, cols)
    assert (1, 2) in recoverable(cells, small, small, 5)


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        protect(one_way([("a", 1)], ("total", 1)), 0)
