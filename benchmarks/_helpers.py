"""What several benchmarks share: the machine line of their reports and VOC-sized test images; for
the CPU numerics benchmark (bench_train.py --numerics) the run header (machine, date, load) and its
one timing mechanism: interleaved repeats, least-disturbed of N."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def cpu_name() -> str:
    """The CPU model (``lscpu``), else whatever ``platform`` knows."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(
            line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def machine() -> str:
    """``<CPU>, <n> logical cores, Python <version>``."""
    return f"{cpu_name()}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def voc_sized_sample(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``i``: RGB uint8 (H, W, 3) and mask uint8 (H, W) at 500x375 (375x500 every third),
    textured synthetic content with up to 6 objects of 11 classes (imports cv2 and segkit.data)."""
    import cv2

    from segkit.data.synthetic import SyntheticSpec, render_sample

    spec = SyntheticSpec(seed=7, min_size=375, max_size=500, num_classes=11, max_objects=6)
    image, mask = render_sample(spec, "train", i)
    h, w = (375, 500) if i % 3 else (500, 375)
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    return image, cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 0.01."""
    return [round(v, 2) for v in os.getloadavg()]


def run_header(script: str) -> dict[str, object]:
    """Machine, software, threads, UTC date, command and the load average at the start of a run
    (imports torch); the caller adds ``load_end`` when it finishes."""
    import torch

    return {
        "machine": cpu_name(),
        "logical_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", script, *sys.argv[1:]]),
        "load_start": load_average(),
    }


def interleave(jobs: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call every job once per round, for ``rounds`` rounds, the order rotated by one each round,
    so a change of load hits every job alike; each job's returned values (seconds) in round order."""
    names = list(jobs)
    values: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            values[name].append(jobs[name]())
    return values


def least_disturbed(seconds: Sequence[float]) -> dict[str, object]:
    """The least disturbed (shortest) of repeated timings and their spread: ``best``, ``median``,
    ``worst``, ``spread`` = (worst - best) / best, ``runs`` (as given)."""
    best, worst = min(seconds), max(seconds)
    return {
        "best": best,
        "median": statistics.median(seconds),
        "worst": worst,
        "spread": (worst - best) / best if best > 0 else float("nan"),
        "runs": list(seconds),
    }
