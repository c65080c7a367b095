"""What the lifecycle commands print: rich progress on stderr, tables of what goes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.lifecycle.retention import Progress as Advance
from gateway.lifecycle.retention import RetentionReport


@contextmanager
def progress_bar(*, enabled: bool, label: str = "erasing") -> Iterator[Advance]:
    """A progress bar on stderr (only on a terminal, and never with --json)."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:

        def quiet(done: int, total: int) -> None:
            return None

        yield quiet
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield advance


def report_table(report: RetentionReport) -> None:
    """Per category and month: the signals that went (or would go)."""
    if not report.groups:
        return
    width = max(len("category"), *(len(g.category) for g in report.groups))
    click.echo(f"{'category':<{width}}  month    signals")
    for group in report.groups:
        click.echo(f"{group.category:<{width}}  {group.month}  {group.signals:>7}")
    sys.stdout.flush()
