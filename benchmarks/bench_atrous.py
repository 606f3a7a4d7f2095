"""Atrous conv: dilated kernel vs space-to-batch, forward time side by side.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_atrous.py [--reps 15] [--threads 1]
        [--out benchmarks/results/atrous.md]

Each case builds two ``segkit.nn.AtrousConv2d`` with the same weights (impl="dilation" and
impl="space_to_batch"), checks that their outputs agree, then times them alternately (A, B, A, B, ...)
so that machine load hits both alike; the figure is the median forward time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import torch

from _helpers import cpu_name
from segkit.nn.atrous import AtrousConv2d

# (label, batch, channels, size, rate, depthwise): ASPP branches at a 513-px crop (33 px at OS 16,
# 65 px at OS 8) and the dilated depthwise convs of Xception-65's middle flow at OS 8.
CASES = [
    ("ASPP 3x3 256->256, OS16", 1, 256, 33, 6, False),
    ("ASPP 3x3 256->256, OS16", 1, 256, 33, 12, False),
    ("ASPP 3x3 256->256, OS16", 1, 256, 33, 18, False),
    ("ASPP 3x3 256->256, OS8", 1, 256, 65, 12, False),
    ("ASPP 3x3 256->256, OS8", 1, 256, 65, 24, False),
    ("depthwise 3x3 728, OS8", 2, 728, 65, 2, True),
    ("depthwise 3x3 728, OS16", 2, 728, 33, 2, True),
    ("depthwise 3x3 1024, OS8", 2, 1024, 65, 4, True),
]


def time_pair(
    a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor, reps: int
) -> tuple[float, float]:
    """Median seconds per forward of ``a`` and ``b``, measured alternately after one warm-up each."""
    times_a, times_b = [], []
    with torch.inference_mode():
        a(x), b(x)
        for _ in range(reps):
            for mod, times in ((a, times_a), (b, times_b)):
                start = time.perf_counter()
                mod(x)
                times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


def run_case(batch: int, channels: int, size: int, rate: int, depthwise: bool, reps: int) -> tuple:
    groups = channels if depthwise else 1
    dil = AtrousConv2d(channels, channels, 3, dilation=rate, groups=groups, impl="dilation")
    s2b = AtrousConv2d(channels, channels, 3, dilation=rate, groups=groups, impl="space_to_batch")
    s2b.load_state_dict(dil.state_dict())
    x = torch.randn(batch, channels, size, size)
    with torch.inference_mode():
        max_diff = (dil(x) - s2b(x)).abs().max().item()
    t_dil, t_s2b = time_pair(dil, s2b, x, reps)
    return t_dil, t_s2b, max_diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/atrous.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows, ratios = [], []
    for label, batch, channels, size, rate, depthwise in CASES:
        t_dil, t_s2b, diff = run_case(batch, channels, size, rate, depthwise, args.reps)
        ratios.append(t_s2b / t_dil)
        rows.append(
            f"| {label} | {batch}x{channels}x{size}x{size} | {rate} | {t_dil * 1e3:.2f} | "
            f"{t_s2b * 1e3:.2f} | {t_s2b / t_dil:.2f} | {diff:.1e} |"
        )
        print(rows[-1], flush=True)
    header = [
        "# Atrous convolution: dilated kernel vs space-to-batch (forward)",
        "",
        f"- machine: {cpu_name()}, {args.threads} thread(s), CPU; torch {torch.__version__}",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `OMP_NUM_THREADS={args.threads} .venv/bin/python benchmarks/bench_atrous.py "
        f"--reps {args.reps} --threads {args.threads}`",
        "- median of the alternating runs; ratio = space_to_batch / dilation (> 1: dilation faster);"
        " max |diff| = largest output difference between the two (same weights)",
        "",
        "| case | input | rate | dilation ms | space_to_batch ms | ratio | max abs diff |",
        "|---|---|---|---|---|---|---|",
    ]
    faster = sum(r > 1 for r in ratios)
    summary = [
        "",
        f"Dilation was faster in {faster} of {len(ratios)} cases; median ratio "
        f"{statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join([*header, *rows, *summary, ""]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
