"""What the head designs cost: params, multiply-adds and train-step time of FCN vs DeepLabv3(+) variants.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_heads.py [--reps 5] [--size 321]
        [--batch 2] [--threads 1] [--out benchmarks/results/heads.md]

Every model shares one MobileNetV2 (width 1.0) backbone architecture; the table varies the head and the
output stride. MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (conv/matmul FLOPs / 2, one
image). A step is a train-mode forward + ``out.mean().backward()``; the models run round-robin
(A, B, C, ..., A, B, C, ...) after a warm-up step so that load on a shared machine hits them alike,
and the figure is the median. This is a benchmark, not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from _helpers import cpu_name
from segkit.backbones import mobilenetv2 as _mobilenetv2
from segkit.models import Segmentor, deeplabv3, deeplabv3plus, fcn

Builder = Callable[[], Segmentor]

# torchvision's layout (1280-channel output), as in the figures of benchmarks/results/heads.md
mobilenetv2 = partial(_mobilenetv2, final_conv=True)


def designs() -> list[tuple[str, Builder]]:
    """(label, builder) for each design; 21 classes as on VOC."""
    k = 21
    out: list[tuple[str, Builder]] = []
    for os_ in (32, 16, 8):
        out.append(
            (
                f"FCN-8s, OS {os_}",
                lambda o=os_: fcn(backbone=mobilenetv2, num_classes=k, output_stride=o),
            )
        )
    for os_ in (32, 16, 8):
        out.append(
            (
                f"DeepLabv3 (ASPP), OS {os_}",
                lambda o=os_: deeplabv3(backbone=mobilenetv2, num_classes=k, output_stride=o),
            )
        )
    for os_ in (16, 8):
        for label, kw in [
            ("ASPP", {}),
            ("ASPP, separable", {"separable": True}),
            ("pyramid pooling", {"context": "pyramid_pooling"}),
            ("no context", {"context": "none"}),
        ]:
            out.append(
                (
                    f"DeepLabv3+ ({label}), OS {os_}",
                    lambda o=os_, kw=kw: deeplabv3plus(
                        backbone=mobilenetv2, num_classes=k, output_stride=o, **kw
                    ),
                )
            )
    return out


def count(model: Segmentor, size: int) -> tuple[float, float, float]:
    """(total params M, head params M, GMACs per image)."""
    total = sum(p.numel() for p in model.parameters()) / 1e6
    head = sum(p.numel() for p in model.head.parameters()) / 1e6
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.randn(1, 3, size, size))
    return total, head, counter.get_total_flops() / 2e9


def step(model: Segmentor, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)["out"].mean().backward()
    elapsed = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return elapsed


def run(reps: int, size: int, batch: int) -> list[tuple[str, float, float, float, float]]:
    torch.manual_seed(0)
    built = [(label, build()) for label, build in designs()]
    counts = [count(model, size) for _, model in built]
    x = torch.randn(batch, 3, size, size)
    for _, model in built:
        model.train()
        step(model, x)  # warm-up
    times: list[list[float]] = [[] for _ in built]
    for _ in range(reps):
        for i, (_, model) in enumerate(built):
            times[i].append(step(model, x))
    return [
        (label, *c, statistics.median(t) * 1e3)
        for (label, _), c, t in zip(built, counts, times, strict=True)
    ]


def report(rows, args: argparse.Namespace) -> str:
    lines = [
        "# Head designs: params, multiply-adds, train-step time (MobileNetV2 backbone)",
        "",
        f"- Command: `OMP_NUM_THREADS={args.threads} .venv/bin/python benchmarks/bench_heads.py "
        f"--reps {args.reps} --size {args.size} --batch {args.batch} --threads {args.threads}`",
        f"- Machine: {cpu_name()}, {args.threads} thread(s); torch {torch.__version__}; "
        f"date {dt.date.today().isoformat()}",
        f"- Input {args.size}x{args.size}; MACs for one image; step = fwd + bwd at batch {args.batch}, "
        f"median of {args.reps} round-robin repeats.",
        "",
        "| design | params (M) | head params (M) | GMACs | step (ms) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r[0]} | {r[1]:.2f} | {r[2]:.2f} | {r[3]:.2f} | {r[4]:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size", type=int, default=321)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/heads.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    text = report(run(args.reps, args.size, args.batch), args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
