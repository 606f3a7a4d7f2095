"""Backbone training-step time: segkit vs torchvision / timm, same weights, same input, one run.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_backbones.py [--reps 10] [--batch 2]
        [--size 224] [--threads 1] [--output-strides 32 16] [--device cpu|cuda]
        [--out benchmarks/results/backbones.md]

A step is forward (train mode) + ``out.mean().backward()`` on the final feature map, gradients reset
with ``set_to_none``. Our model gets the reference's state dict through ``weights=<file>`` (so the
arithmetic is identical), both run alternately (A, B, A, B, ...) after a warm-up step, and the figure
is the median step time (on CUDA each step is closed by a synchronize, so the time is the
device's, not the launch queue's). Target: ours / reference <= 1.05.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import timm
import torch
import torchvision

from _helpers import cpu_name
from segkit.backbones import mobilenetv2, xception65

Step = Callable[[torch.Tensor], torch.Tensor]
Pair = tuple[str, torch.nn.Module, Step, torch.nn.Module, Step]


def pairs(output_strides: list[int], tmp: Path, device: torch.device) -> list[Pair]:
    """(label, our module, our step fn, reference module, reference step fn); the step fns return
    the final feature map."""
    out: list[Pair] = []
    ref_mb = torchvision.models.mobilenet_v2().train()
    torch.save(ref_mb.state_dict(), tmp / "mnv2.pt")
    ours_mb = (
        mobilenetv2(output_stride=32, weights=str(tmp / "mnv2.pt"), final_conv=True)
        .train()
        .to(device)
    )
    ref_mb.to(device)
    label = "MobileNetV2 vs torchvision mobilenet_v2, OS 32"
    out.append((label, ours_mb, lambda x: ours_mb(x)[-1], ref_mb, ref_mb.features))
    for os_ in output_strides:
        ref_x = timm.create_model("xception65", output_stride=os_).train()
        torch.save(ref_x.state_dict(), tmp / f"x65_{os_}.pt")
        ours_x = xception65(output_stride=os_, weights=str(tmp / f"x65_{os_}.pt")).train()
        ours_x.to(device)
        ref_x.to(device)
        label = f"Xception-65 vs timm xception65, OS {os_}"
        out.append((label, ours_x, lambda x, m=ours_x: m(x)[-1], ref_x, ref_x.forward_features))
    return out


def step_time(fn: Step, x: torch.Tensor, module: torch.nn.Module) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    fn(x).mean().backward()
    sync()
    elapsed = time.perf_counter() - start
    module.zero_grad(set_to_none=True)
    return elapsed


def measure(pair: Pair, x: torch.Tensor, reps: int) -> tuple[list[float], list[float]]:
    """Step times of ours and the reference, alternating, after one warm-up step each."""
    _, ours, ours_fn, ref, ref_fn = pair
    step_time(ours_fn, x, ours), step_time(ref_fn, x, ref)
    t_ours, t_ref = [], []
    for _ in range(reps):
        t_ours.append(step_time(ours_fn, x, ours))
        t_ref.append(step_time(ref_fn, x, ref))
    return t_ours, t_ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output-strides", type=int, nargs="+", default=[32, 16])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/backbones.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in pairs(args.output_strides, Path(tmp), device):
            label = pair[0]
            t_ours, t_ref = measure(pair, x, args.reps)
            med_o, med_r = statistics.median(t_ours), statistics.median(t_ref)
            min_o, min_r = min(t_ours), min(t_ref)
            rows.append(
                f"| {label} | {med_o * 1e3:.0f} | {med_r * 1e3:.0f} | {med_o / med_r:.3f} | "
                f"{min_o * 1e3:.0f} | {min_r * 1e3:.0f} | {min_o / min_r:.3f} |"
            )
            print(rows[-1], flush=True)
    shape = f"{args.batch}x3x{args.size}x{args.size}"
    header = [
        "# Backbone forward+backward step: segkit vs torchvision / timm",
        "",
        f"- machine: {cpu_name()}, {args.threads} thread(s), {_device_name(device)}; "
        f"torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, timm {timm.__version__}",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `OMP_NUM_THREADS={args.threads} .venv/bin/python benchmarks/bench_backbones.py "
        f"--reps {args.reps} --batch {args.batch} --size {args.size} --threads {args.threads} "
        f"--output-strides {' '.join(map(str, args.output_strides))} --device {args.device}`",
        f"- input {shape}, train mode, same weights and input, alternating runs ({args.reps} each"
        " after a warm-up); ratio = segkit / reference, target <= 1.05. The machine is shared, so"
        " the minimum (least disturbed run) is given next to the median.",
        "",
        "| pair | segkit median ms | reference median ms | ratio (median) | segkit min ms |"
        " reference min ms | ratio (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join([*header, *rows, ""]))
    print(f"wrote {args.out}")


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


if __name__ == "__main__":
    main()
