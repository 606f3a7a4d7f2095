"""The first run on a CUDA machine, in one command (``make gpu-check``), under 10 minutes.

    python scripts/gpu_check.py [--out logs/gpu_check/<time>] [--steps 300] [--batch-size 8]
        [--crop 513] [--gpus N] [--dry-run]

Runs, each as its own process with its log in the output folder:
1. ``benchmarks/bench_backbones.py --device cuda`` (segkit vs torchvision / timm training steps);
2. ``benchmarks/bench_eval.py --device cuda`` (batched vs batch-1 evaluation);
3. ``scripts/train.py``: DeepLabv3+ / Xception-65 at crop 513 on synthetic images of VOC size
   (375-500 px), ``trainer=gpu`` (bf16-mixed autocast, channels_last, cuDNN benchmark),
   ``compile=true``, DDP over all visible GPUs (``--gpus``), ``--steps`` steps, one validation;
and writes ``<out>/gpu_check.json`` (schema ``segkit.gpu_check/1``): training images/s (all GPUs,
median of the logged windows) and peak allocated memory (rank 0's GPU, from Lightning's
``DeviceStatsMonitor``), the evaluation batch-8 / batch-1 speed ratio, each step's command, exit
status and wall time. ``--dry-run`` prints the commands and exits (no GPU needed).

Exit status: 0 when every step succeeded; 1 when one failed (the file says which, its log why);
1 at once, with one line, on a machine without CUDA. argparse, not Hydra: this script only starts
others (their Hydra configs do the rest).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "segkit.gpu_check/1"
EVAL_BATCH = 8
#: The training of step 3 (everything but the per-run sizes, which come from the arguments).
TRAIN_OVERRIDES = (
    "model=deeplabv3plus", "backbone=xception65", "backbone.weights=null",
    "data=synthetic", "data.dataset.min_size=375", "data.dataset.max_size=500",
    "trainer=gpu", "trainer.strategy=ddp", "trainer.benchmark=true",
    "trainer.precision=bf16-mixed", "module.channels_last=true", "compile=true",
    "trainer.num_sanity_val_steps=0", "trainer.check_val_every_n_epoch=null",
    "+callbacks.device_stats._target_=pytorch_lightning.callbacks.DeviceStatsMonitor",
    "+callbacks.device_stats.cpu_stats=false",
    "callbacks.progress_bar=null",
)  # fmt: skip
PEAK_COLUMN = "allocated_bytes.all.peak"


@dataclass
class Step:
    name: str
    argv: list[str]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="output folder (default logs/gpu_check/<time>)")
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--batch-size", type=int, default=8, help="training images per GPU")
    parser.add_argument("--crop", type=int, default=513, help="training crop size")
    parser.add_argument("--gpus", type=int, help="GPUs for the DDP training (default: all)")
    parser.add_argument("--timeout-min", type=float, default=10.0, help="limit for each step")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "crop", "gpus"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.steps < 20:
        parser.error(
            f"--steps must be >= 20 (the throughput is logged every 10 steps), got {args.steps}"
        )
    return args


def plan(args: argparse.Namespace, gpus: int, out: Path) -> list[Step]:
    """The commands, in order."""
    py = sys.executable
    train = [
        py, str(ROOT / "scripts" / "train.py"), *TRAIN_OVERRIDES,
        f"trainer.devices={gpus}", f"trainer.max_steps={args.steps}",
        f"trainer.val_check_interval={args.steps}", "trainer.log_every_n_steps=10",
        f"data.crop_size={args.crop}", f"data.batch_size={args.batch_size}",
        f"data.dataset.num_train={max(64, 2 * args.batch_size * gpus)}",
        "data.dataset.num_val=32", f"data.num_workers={workers_per_gpu(gpus)}",
        f"data.root={out / 'data'}", f"hydra.run.dir={out / 'train'}",
    ]  # fmt: skip
    return [
        Step(
            "backbones",
            [
                py,
                str(ROOT / "benchmarks" / "bench_backbones.py"),
                "--device",
                "cuda",
                "--out",
                str(out / "backbones.md"),
            ],
        ),  # fmt: skip
        Step(
            "eval",
            [
                py,
                str(ROOT / "benchmarks" / "bench_eval.py"),
                "--device",
                "cuda",
                "--batch-size",
                str(EVAL_BATCH),
                "--images",
                "64",
            ],
        ),  # fmt: skip
        Step("train", train),
    ]


def workers_per_gpu(gpus: int) -> int:
    return max(1, min(8, (os.cpu_count() or 2) // max(gpus, 1) - 1))


def eval_ratio(stdout: str) -> dict[str, float] | None:
    """Batch-1 and batch-8 images/s and their ratio from bench_eval's table (its fixed-size row:
    same pixels in both passes); None when the table is not there."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].endswith("fixed"):
            one, many = float(cells[1]), float(cells[2])
            return {"images_per_s_batch1": one, f"images_per_s_batch{EVAL_BATCH}": many,
                    f"batch{EVAL_BATCH}_vs_batch1": round(many / one, 3)}  # fmt: skip
    return None


def train_figures(run_dir: Path, world_size: int) -> dict[str, Any]:
    """Images/s (median of the logged ``train/img_s`` windows after the first, times the world
    size: each rank logs its own) and the peak allocated GPU memory from ``csv/metrics.csv``."""
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    per_rank = [float(r["train/img_s"]) for r in rows if r.get("train/img_s")]
    peaks = [float(v) for r in rows for k, v in r.items() if k and k.endswith(PEAK_COLUMN) and v]
    steady = per_rank[1:] or per_rank  # the first window holds compilation and cuDNN search
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "images_per_s": round(statistics.median(steady) * world_size, 2) if steady else None,
        "images_per_s_per_gpu": round(statistics.median(steady), 2) if steady else None,
        "peak_memory_gib": round(max(peaks) / 2**30, 3) if peaks else None,
        "global_step": metrics.get("global_step"),
        "val/mIoU": metrics.get("val/mIoU"),
        "status": metrics.get("status"),
    }


def run_step(step: Step, out: Path, timeout_s: float) -> dict[str, Any]:
    """Run one step, its stdout + stderr into ``<out>/<name>.log``."""
    log_file = out / f"{step.name}.log"
    start = time.perf_counter()
    try:
        proc = subprocess.run(step.argv, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout_s)  # fmt: skip
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as err:
        code = None
        stdout = err.stdout.decode() if isinstance(err.stdout, bytes) else err.stdout or ""
        stderr = f"timed out after {timeout_s:.0f} s\n"
    log_file.write_text(stdout + stderr)
    return {"name": step.name, "command": step.argv, "returncode": code, "stdout": stdout,
            "wall_s": round(time.perf_counter() - start, 1), "log": str(log_file)}  # fmt: skip


def machine(torch: Any) -> dict[str, Any]:
    return {
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }  # fmt: skip


def build_result(steps: list[dict[str, Any]], *, args: argparse.Namespace, gpus: int,
                 machine_info: dict[str, Any], out: Path) -> dict[str, Any]:  # fmt: skip
    """The result file's content (see the module docstring)."""
    by_name = {s["name"]: s for s in steps}
    train: dict[str, Any] = {
        "model": "deeplabv3plus/xception65", "crop": args.crop, "batch_per_gpu": args.batch_size,
        "gpus": gpus, "steps": args.steps, "precision": "bf16-mixed", "channels_last": True,
        "cudnn_benchmark": True, "compile": True, "run_dir": str(out / "train"),
    }  # fmt: skip
    if by_name.get("train", {}).get("returncode") == 0:
        train.update(train_figures(out / "train", gpus))
    evaluation = eval_ratio(by_name["eval"]["stdout"]) if "eval" in by_name else None
    return {
        "schema": SCHEMA,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info,
        "train": train,
        "eval": evaluation,
        "backbones": str(out / "backbones.md"),
        "steps": [{k: v for k, v in s.items() if k != "stdout"} for s in steps],
        "ok": all(s["returncode"] == 0 for s in steps),
    }


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    args = parse(argv)
    out = args.out or ROOT / "logs" / "gpu_check" / time.strftime("%Y-%m-%d_%H-%M-%S")
    if args.dry_run:
        for step in plan(args, args.gpus or 1, out):
            print(f"# {step.name}\n{' '.join(step.argv)}")
        return 0
    import torch

    if not torch.cuda.is_available():
        print(f"error: gpu-check needs a CUDA GPU and this machine has none "
              f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}): "
              "run it on a GPU machine, or --dry-run to see its commands", file=sys.stderr)  # fmt: skip
        return 1
    available = torch.cuda.device_count()
    gpus = args.gpus or available
    if gpus > available:
        print(f"error: --gpus {gpus} but this machine has {available} CUDA GPUs", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    steps = []
    for step in plan(args, gpus, out):
        print(f"gpu-check: {step.name} ...", flush=True)
        steps.append(run_step(step, out, args.timeout_min * 60))
        print(f"gpu-check: {step.name} exit {steps[-1]['returncode']} "
              f"({steps[-1]['wall_s']} s, log {steps[-1]['log']})", flush=True)  # fmt: skip
    result = build_result(steps, args=args, gpus=gpus, machine_info=machine(torch), out=out)
    write_atomic(out / "gpu_check.json", result)
    print(json.dumps({"train": result["train"], "eval": result["eval"]}, indent=2))
    print(f"gpu-check: {'ok' if result['ok'] else 'FAILED'}, {out / 'gpu_check.json'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
