"""The one progress bar of segkit's long non-training work: evaluation, prediction, export's check,
``compare --fill``, the comparison runner, downloads, the data check.

A bar shows what is done, the rate and the time left (rich's columns) and redraws itself in
place on a terminal; when the output is not a terminal (a log file, CI, a pipe) nothing is drawn
while the work runs and one plain line (what, how many, how long, the rate) is written when it
ends or fails, so a log holds a record, not bar frames. Training has its own bar (Lightning's,
``training.progress``).

Light: standard library and rich only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

T = TypeVar("T")


class RateColumn(ProgressColumn):
    """``12.3 img/s`` (or ``s/img`` when slower than one a second)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text(f"? {self.unit}/s", style="progress.data.speed")
        if speed < 1:
            return Text(f"{1 / speed:.1f} s/{self.unit}", style="progress.data.speed")
        return Text(f"{speed:.1f} {self.unit}/s", style="progress.data.speed")


def columns(unit: str) -> tuple[ProgressColumn, ...]:
    """Description, bar, done/total, rate, elapsed, time left; bytes for ``unit="B"``."""
    if unit == "B":
        counted: tuple[ProgressColumn, ...] = (DownloadColumn(), TransferSpeedColumn())
    else:
        counted = (MofNCompleteColumn(), RateColumn(unit))
    return (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        *counted,
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )


@contextmanager
def progress(
    description: str,
    total: int | None,
    *,
    unit: str = "img",
    console: Console | None = None,
    completed: int = 0,
) -> Iterator[Callable[[int], None]]:
    """A bar for ``total`` units of work (None: unknown); yields ``advance(n)``.

    Redraws only on a terminal (``console.is_terminal``); elsewhere one final line. ``unit="B"``
    shows sizes and a transfer speed (downloads); ``completed`` starts the bar part-way (a resumed
    download).
    """
    console = console or Console(stderr=True)
    if not console.is_terminal:
        with _record(description, total, unit, console, completed) as advance:
            yield advance
        return
    with Progress(*columns(unit), console=console) as bar:
        task = bar.add_task(description, total=total, completed=completed)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


def track(
    items: Iterable[T],
    description: str,
    total: int | None,
    *,
    count: Callable[[T], int] = lambda _: 1,
    unit: str = "img",
    enabled: bool = True,
) -> Iterator[T]:
    """``items`` as they come, with :func:`progress` advanced by ``count(item)`` after each (a
    batch of images: ``count=lambda b: len(b["id"])``). ``enabled=False`` (a torchrun rank that
    does not write) only passes the items through."""
    if not enabled:
        yield from items
        return
    with progress(description, total, unit=unit) as advance:
        for item in items:
            yield item
            advance(count(item))


@contextmanager
def _record(
    description: str, total: int | None, unit: str, console: Console, completed: int
) -> Iterator[Callable[[int], None]]:
    """No bar: count, then write one plain line (also when the work fails part-way)."""
    done = [completed]
    start = time.perf_counter()

    def advance(n: int = 1) -> None:
        done[0] += n

    try:
        yield advance
    finally:
        seconds = time.perf_counter() - start
        count = done[0] - completed
        of = "" if total is None else f"/{total}"
        rate = f", {count / seconds:.1f} {unit}/s" if seconds > 0 and count else ""
        line = f"{description}: {done[0]}{of} {unit} in {seconds:.1f} s{rate}"
        console.file.write(line + "\n")
        console.file.flush()


__all__ = ["RateColumn", "columns", "progress", "track"]
