"""The training clock: wall and CPU seconds of a run over all its segments (a run pre-empted and
resumed is trained by several processes), carried in the checkpoint like the rest of the exact-
resume state, so a resumed run's ``train_time_s`` is the whole run's and not the last process's."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Segment:
    """One process's share of a run: steps ``from_step`` to ``to_step``, its wall and CPU seconds
    (CPU: this process's threads, data-loader workers not counted) and the 1-minute load average
    when it was last read (the machine may be shared: wall time says as much about the other jobs
    as about the run)."""

    from_step: int
    to_step: int
    wall_s: float
    cpu_s: float
    load_avg_1min: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        return cls(
            int(d["from_step"]), int(d["to_step"]), float(d["wall_s"]), float(d["cpu_s"]),
            float(d["load_avg_1min"]),
        )  # fmt: skip


@dataclass
class TrainClock:
    """Segments of earlier processes (from the checkpoint) plus the running one.

    ``untimed_steps``: steps trained before the first timed segment, by a process whose checkpoint
    had no clock (written by an older segkit): their time is unknown and not in the totals.
    """

    past: list[Segment] = field(default_factory=list)
    untimed_steps: int = 0
    _start: tuple[float, float, int] | None = None  # (wall, cpu, step) when this process started

    def begin(self) -> None:
        """This process starts fitting (the model's ``on_fit_start``: set-up and the sanity check
        count as the run's time)."""
        step = self.past[-1].to_step if self.past else 0  # until first_step says otherwise
        self._start = (time.perf_counter(), time.process_time(), step)

    def first_step(self, step: int) -> None:
        """Training starts at ``step`` (``on_train_start``: after Lightning restored the loops)."""
        covered = self.past[-1].to_step if self.past else 0
        if step > covered:  # resumed from a checkpoint that had no clock
            self.untimed_steps += step - covered
        if self._start is None:
            self.begin()
        wall, cpu, _ = self._start  # type: ignore[misc]
        self._start = (wall, cpu, step)

    def current(self, step: int) -> Segment | None:
        """This process's segment up to now, at ``step``; None before :meth:`begin`."""
        if self._start is None:
            return None
        wall, cpu, first = self._start
        return Segment(
            from_step=first, to_step=step, wall_s=round(time.perf_counter() - wall, 3),
            cpu_s=round(time.process_time() - cpu, 3), load_avg_1min=round(os.getloadavg()[0], 2),
        )  # fmt: skip

    def segments(self, step: int) -> list[Segment]:
        now = self.current(step)
        return self.past + ([now] if now is not None else [])

    def state(self, step: int) -> dict[str, Any]:
        """What a checkpoint written at ``step`` stores (plain types: ``weights_only`` reads it)."""
        return {
            "segments": [asdict(s) for s in self.segments(step)],
            "untimed_steps": self.untimed_steps,
        }

    def load(self, state: dict[str, Any] | None) -> None:
        """Take a checkpoint's clock (None: a checkpoint without one)."""
        state = state or {}
        self.past = [Segment.from_dict(s) for s in state.get("segments", [])]
        self.untimed_steps = int(state.get("untimed_steps", 0))

    def summary(self, step: int) -> dict[str, Any]:
        """The run's time for ``metrics.json``: totals over every timed segment, the segments, and
        the steps whose time is unknown (0 when the whole run is timed)."""
        segments = self.segments(step)
        return {
            "train_time_s": round(sum(s.wall_s for s in segments), 3),
            "train_cpu_s": round(sum(s.cpu_s for s in segments), 3),
            "train_segments": [asdict(s) for s in segments],
            "train_untimed_steps": self.untimed_steps,
        }
