"""Training throughput: segkit's train loop (what scripts/train.py runs) vs a bare PyTorch loop.

Usage: OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_train.py [--steps 40] [--warmup 5]
        [--repeats 3] [--out benchmarks/results/train.md] [Hydra overrides ...]

Both sides use the same composed config (default: experiment=quickstart, i.e. synthetic data on the
CPU; pass e.g. ``trainer=gpu data.batch_size=16`` on a GPU machine): the same DataModule and batches,
the same network, the same SGD/AdamW parameter groups and per-step poly LR. The segkit side is
``segkit.tasks.train.train(cfg)`` with its default callbacks and loggers (checkpointing, NaN guard,
throughput meter, progress bar, CSV + TensorBoard), validation off. The bare side is a plain
``for batch in loader`` loop: copy, normalise, forward, cross-entropy, backward, step, scheduler
step. Images/s are timed from the end of step ``warmup`` to the end of the last step (CUDA
synchronised at both ends). The two sides alternate (A, B, A, B, ...) so load on a shared machine
hits them alike; the figure per side is the median. A benchmark, not a test: nothing is asserted.

``--numerics``: the CPU recipe's numerics instead (benchmarks/train_numerics.py): bf16 autocast +
channels_last vs float32 contiguous per training step, segkit's DeepLabv3+ and FCN-8s on
MobileNetV2 and smp's DeepLabV3Plus (the ``bench`` extra), images/s, work per image, achieved
GFLOP/s against a matmul peak, peak RSS::

    OMP_NUM_THREADS=2 python benchmarks/bench_train.py --numerics [--steps 6] [--warmup 2]
        [--repeats 3] [--batch 4] [--sizes 256x256,360x480] [--rss 8x360x480] [--load "..."]
        [--out FILE.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from _helpers import cpu_name
from segkit.cli.configs import compose_config
from segkit.constants import IGNORE_INDEX
from segkit.runs import builder_name
from segkit.tasks.train import train
from segkit.training import build_param_groups

ROOT = Path(__file__).resolve().parents[1]
TIMES: dict[str, float] = {}


def _clocks() -> tuple[float, float]:
    """(wall, process CPU) seconds. CPU time is the steadier figure on a shared machine: other
    users' load stretches wall time but not the work this process does."""
    return time.perf_counter(), time.process_time()


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer(pl.Callback):
    """Records the wall time between the end of step ``warmup`` and the end of step ``last``."""

    def __init__(self, warmup: int, last: int) -> None:
        self.warmup, self.last = warmup, last

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step in (self.warmup, self.last):
            _sync()
            key = "start" if step == self.warmup else "end"
            TIMES[f"{key}_wall"], TIMES[f"{key}_cpu"] = _clocks()


def compose_cfg(overrides: list[str], out_dir: Path):
    return compose_config(
        "train",
        [
            "experiment=quickstart",
            "module.scheduler.warmup_steps=0",  # short timed runs; the schedule does not affect speed
            f"paths.root_dir={ROOT}",
            f"paths.output_dir={out_dir}",
            *overrides,
        ],
    )


def run_segkit(overrides: list[str], steps: int, warmup: int, batch: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_cfg(
            [
                *overrides,
                f"trainer.max_steps={warmup + steps}",
                "trainer.limit_val_batches=0",
                "trainer.num_sanity_val_steps=0",
                "trainer.enable_model_summary=false",
                "+callbacks.bench_timer._target_=__main__.StepTimer",
                f"+callbacks.bench_timer.warmup={warmup}",
                f"+callbacks.bench_timer.last={warmup + steps}",
            ],
            Path(tmp),
        )
        TIMES.clear()
        train(cfg)
    images = steps * batch
    return (
        images / (TIMES["end_wall"] - TIMES["start_wall"]),
        images / (TIMES["end_cpu"] - TIMES["start_cpu"]),
    )


def _batches(loader) -> Any:
    while True:  # as many epochs as needed, like max_steps
        yield from loader


def run_bare(overrides: list[str], steps: int, warmup: int, batch: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_cfg(overrides, Path(tmp))
    pl.seed_everything(cfg.seed, workers=True)
    device = torch.device("cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu")
    dm = instantiate(cfg.data, _convert_="all")
    dm.prepare_data()
    dm.setup("fit")
    model = instantiate(cfg.model).to(device).train()
    m = cfg.module
    groups = build_param_groups(
        model,
        lr=m.lr,
        weight_decay=m.weight_decay,
        backbone_lr_mult=m.backbone_lr_mult,
        no_decay_depthwise=m.no_decay_depthwise,
    )
    opt = instantiate(m.optimizer, _convert_="all")(groups, lr=m.lr)
    sched = instantiate(m.scheduler, _convert_="all")(opt, total_steps=warmup + steps)
    start = (0.0, 0.0)
    for step, b in enumerate(_batches(dm.train_dataloader()), start=1):
        b = dm.on_after_batch_transfer(
            {
                "image": b["image"].to(device, non_blocking=True),
                "mask": b["mask"].to(device, non_blocking=True),
            },
            0,
        )
        out = model(b["image"])
        loss = F.cross_entropy(out["out"], b["mask"], ignore_index=IGNORE_INDEX)
        if "aux" in out:
            loss = loss + m.aux_weight * F.cross_entropy(
                out["aux"], b["mask"], ignore_index=IGNORE_INDEX
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step == warmup:
            _sync()
            start = _clocks()
        if step == warmup + steps:
            _sync()
            wall, cpu = _clocks()
            return steps * batch / (wall - start[0]), steps * batch / (cpu - start[1])
    raise RuntimeError("the loader ended early")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--numerics", action="store_true", help="bf16/channels_last vs fp32")
    parser.add_argument("--batch", type=int, default=4, help="--numerics: images per step")
    parser.add_argument("--sizes", default="256x256,360x480", help="--numerics: HxW,...")
    parser.add_argument("--rss", default="8x360x480", help="--numerics: BxHxW of the RSS step")
    parser.add_argument(
        "--load", default=None, help="--numerics: the machine's load, for the record"
    )
    args, overrides = parser.parse_known_args()
    if args.numerics:
        return main_numerics(args)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_cfg(overrides, Path(tmp))
    batch = int(cfg.data.batch_size)
    results: dict[str, list[tuple[float, float]]] = {"segkit": [], "bare": []}
    for _ in range(args.repeats):
        results["segkit"].append(run_segkit(overrides, args.steps, args.warmup, batch))
        results["bare"].append(run_bare(overrides, args.steps, args.warmup, batch))
    report = render(args, overrides, cfg, results)
    print(report)
    if args.out:
        args.out.write_text(report)


def main_numerics(args) -> None:
    import os

    import train_numerics

    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    load = args.load or "load average {:.2f} {:.2f} {:.2f} at the start".format(*os.getloadavg())
    rss_at = tuple(int(v) for v in args.rss.split("x"))
    res = train_numerics.run(
        sizes, args.batch, args.steps, args.warmup, args.repeats, rss_at=rss_at
    )
    end = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    lines = [
        "# CPU training step: bf16 autocast + channels_last vs float32 contiguous",
        "",
        f"- machine: {cpu_name()}; torch {torch.__version__}, threads {torch.get_num_threads()}",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- load: {load}; {end} at the end",
        f"- command: `{' '.join(['python', 'benchmarks/bench_train.py', *sys.argv[1:]])}`",
        f"- batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up steps per "
        f"measurement, {args.repeats} interleaved rounds; AdamW, 21 classes, random batches",
        *train_numerics.render(res, sizes, args.batch),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report)


def render(args, overrides, cfg, results) -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu_name()

    def med(side: str, i: int) -> float:
        return statistics.median(r[i] for r in results[side])

    def runs(side: str, i: int) -> str:
        return ", ".join(f"{r[i]:.1f}" for r in results[side])

    lines = [
        "# Training throughput: segkit train loop vs bare PyTorch loop",
        "",
        f"- machine: {device}; torch {torch.__version__}, threads {torch.get_num_threads()}",
        f"- date: {dt.date.today().isoformat()}",
        f"- command: `{' '.join(['python', 'benchmarks/bench_train.py', *sys.argv[1:]])}`",
        f"- config: experiment=quickstart {' '.join(overrides)} -> model "
        f"{builder_name(cfg.model)}, batch {cfg.data.batch_size}, crop "
        f"{cfg.data.crop_size}, precision {cfg.trainer.precision}",
        f"- {args.steps} timed steps after {args.warmup} warm-up steps, "
        f"{args.repeats} alternating repeats (segkit, bare, segkit, bare, ...)",
        "",
        "| loop | images/s wall (median) | runs | images/CPU-s (median) | runs |",
        "|---|---:|---|---:|---|",
    ]
    labels = {
        "segkit": "segkit `train()` (Lightning + callbacks + loggers)",
        "bare": "bare PyTorch loop",
    }
    for side, label in labels.items():
        lines.append(
            f"| {label} | {med(side, 0):.1f} | {runs(side, 0)} | {med(side, 1):.1f} | {runs(side, 1)} |"
        )
    lines += [
        "",
        f"**ratio segkit / bare: {med('segkit', 0) / med('bare', 0):.3f} (wall), "
        f"{med('segkit', 1) / med('bare', 1):.3f} (CPU time)** -- target >= 0.95",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
