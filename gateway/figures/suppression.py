"""Disclosure control for published counts: primary and complementary cell suppression.

A published table is a set of cells (inner counts and their totals) tied by additive
constraints. It is drawn as a graph: every constraint "these cells add up to that total"
is a node balance, every cell an edge between two nodes carrying `sign * value` (inner
cells +1, totals -1, the grand total of a two-way table +1 again). Every node then
balances to zero, like a circulation, and a change of the cells that keeps every
published number true is a circulation too — a sum of cycles of suppressed cells.

- **Primary**: every cell below the threshold (zero included) is shown as "< t", never as
  a number. A reader therefore knows it lies in [0, t-1].
- **Complementary**: a cell whose value still follows from the published numbers (and
  from what the reader knows of the hidden ones: "< t" cells are below t, the other
  hidden cells at least t) is protected by hiding one more cell next to it, the smallest,
  until no hidden cell can be recovered. A cell is recoverable exactly when no cycle of
  hidden cells through it can move by one within those bounds (the table's constraint
  matrix is a network matrix, so the feasible values of one cell form an interval of
  integers, and if it holds two values a unit cycle reaches the other).
- If even hiding every cell leaves a cell recoverable, the whole table is withheld.

`protect` is pure: the tests check it against a brute-force enumeration of every table
consistent with what is published (`tests/figures/test_suppression.py`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: A cell's name: anything hashable (a tuple, a string).
Key = Any


@dataclass(frozen=True)
class Cell:
    """One published number: an edge from node `u` to node `v` carrying `sign * value`."""

    key: Key
    u: Hashable
    v: Hashable
    sign: int
    value: int


@dataclass(frozen=True)
class Protection:
    """What to hide: `primary` cells are shown as "< t", `complementary` ones are left out;
    `withheld` means nothing of the table may be published."""

    primary: frozenset[Key]
    complementary: frozenset[Key]
    withheld: bool = False

    @property
    def hidden(self) -> frozenset[Key]:
        return self.primary | self.complementary


def one_way(values: Sequence[tuple[Key, int]], total: tuple[Key, int]) -> list[Cell]:
    """Cells that add up to a total: two nodes, every cell an edge between them."""
    cells = [Cell(key, "parts", "whole", 1, value) for key, value in values]
    cells.append(Cell(total[0], "parts", "whole", -1, total[1]))
    return cells


def two_way(
    inner: Mapping[tuple[Key, Key], int],
    rows: Sequence[Key],
    columns: Sequence[Key],
) -> list[Cell]:
    """A table of `rows` x `columns` with its row totals, column totals and grand total.

    Cell keys: `(row, column)` inside, `(row, None)` for a row total, `(None, column)` for
    a column total and `(None, None)` for the grand total.
    """
    cells: list[Cell] = []
    for r in rows:
        for c in columns:
            cells.append(Cell((r, c), ("row", r), ("col", c), 1, inner.get((r, c), 0)))
        total = sum(inner.get((r, c), 0) for c in columns)
        cells.append(Cell((r, None), ("row", r), ("col", None), -1, total))
    for c in columns:
        total = sum(inner.get((r, c), 0) for r in rows)
        cells.append(Cell((None, c), ("row", None), ("col", c), -1, total))
    grand = sum(inner.values())
    cells.append(Cell((None, None), ("row", None), ("col", None), 1, grand))
    return cells


def _bounds(cell: Cell, primary: frozenset[Key], threshold: int) -> tuple[int, int | None]:
    """What a reader knows of a hidden cell: "< t" is in [0, t-1], the others >= t."""
    return (0, threshold - 1) if cell.key in primary else (threshold, None)


def _moves(cell: Cell, primary: frozenset[Key], threshold: int) -> tuple[bool, bool]:
    """Can the cell's edge quantity (sign * value) go up by one, or down by one?"""
    low, high = _bounds(cell, primary, threshold)
    up = high is None or cell.value + 1 <= high
    down = cell.value - 1 >= low
    return (up, down) if cell.sign > 0 else (down, up)


def recoverable(
    cells: Sequence[Cell], hidden: Iterable[Key], primary: Iterable[Key], threshold: int
) -> list[Key]:
    """The hidden cells whose value follows from the published ones and the bounds."""
    hidden_set = frozenset(hidden)
    primary_set = frozenset(primary)
    moves = {c.key: _moves(c, primary_set, threshold) for c in cells if c.key in hidden_set}
    found: list[Key] = []
    for cell in cells:
        if cell.key not in hidden_set:
            continue
        up, down = moves[cell.key]
        # up: u -> v on this edge, then a path back v ~> u through the other hidden cells
        if up and _path(cells, moves, cell.key, cell.v, cell.u):
            continue
        if down and _path(cells, moves, cell.key, cell.u, cell.v):
            continue
        found.append(cell.key)
    return found


def _path(
    cells: Sequence[Cell],
    moves: dict[Key, tuple[bool, bool]],
    skip: Key,
    start: Hashable,
    goal: Hashable,
) -> bool:
    """Is there a path start ~> goal in the residual graph of the hidden cells but `skip`?"""
    edges: dict[Hashable, list[Hashable]] = {}
    for c in cells:
        if c.key == skip or c.key not in moves:
            continue
        up, down = moves[c.key]
        if up:
            edges.setdefault(c.u, []).append(c.v)
        if down:
            edges.setdefault(c.v, []).append(c.u)
    seen = {start}
    stack = [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def protect(cells: Sequence[Cell], threshold: int, hidden: Iterable[Key] = ()) -> Protection:
    """Hide every cell below `threshold`, then as few further cells as it takes (smallest
    first) until no hidden cell can be recovered; withhold the table if that fails.

    `hidden`: cells already hidden for another table they belong to (linked tables).
    """
    if threshold < 1:
        raise ValueError("the threshold must be at least 1")
    primary = frozenset(c.key for c in cells if c.value < threshold)
    keys = {c.key for c in cells}
    hidden = set(primary) | (set(hidden) & keys)
    order = {c.key: i for i, c in enumerate(cells)}
    while True:
        stuck = recoverable(cells, hidden, primary, threshold)
        if not stuck:
            return Protection(primary, frozenset(hidden - primary))
        target = next(c for c in cells if c.key == stuck[0])
        candidates = [
            c for c in cells if c.key not in hidden and {c.u, c.v} & {target.u, target.v}
        ] or [c for c in cells if c.key not in hidden]
        if not candidates:
            return Protection(primary, frozenset(hidden - primary), withheld=True)
        chosen = min(candidates, key=lambda c: (c.value, order[c.key]))
        hidden.add(chosen.key)
