"""Regenerate docs/comparison.md: train FCN vs DeepLab designs on the built-in synthetic data (CPU),
evaluate each best checkpoint (with the trimap curve), analyse it (RF, ERF, cost), then compare.

    python scripts/run_comparison.py                 # everything (12-19 min on 2 shared CPU cores)
    python scripts/run_comparison.py --reuse logs/comparison/<time>   # only compare + doc again
    python scripts/run_comparison.py trainer.max_steps=50              # extra overrides for training

Run folders go to logs/comparison/<time>/<design>/ (train), .../<design>/eval_os<N>/ (evaluate) and
.../<design>/analysis_os<N>/ (analyze); the doc goes to --doc and its plots to --assets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from segkit.tasks._common import exit_on_user_error
from segkit.tasks.compare import (
    analyze_checkpoint,
    compare,
    evaluate_checkpoint,
    write_comparison_doc,
)
from segkit.tasks.train import train

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

#: name -> training overrides (on top of experiment=quickstart), and extra evaluation strides.
DESIGNS: dict[str, tuple[list[str], list[int]]] = {
    "fcn32s_os32": (["model=fcn", "model.fcn_variant=32s", "model.output_stride=32"], []),
    "fcn8s_os32": (["model=fcn", "model.fcn_variant=8s", "model.output_stride=32"], []),
    "deeplabv3_os16": (["model=deeplabv3", "model.output_stride=16"], []),
    "deeplabv3plus_os16": (["model=deeplabv3plus", "model.output_stride=16"], [8]),
    "deeplabv3plus_os8": (["model=deeplabv3plus", "model.output_stride=8"], []),
}
PROVENANCE = "comparison_run.json"


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(name, overrides=[f"paths.root_dir={Path.cwd()}", *overrides])


def run_design(name: str, run_dir: Path, extra: list[str]) -> None:
    """Train one design, then evaluate and analyse its best checkpoint at each output stride."""
    train_overrides, eval_strides = DESIGNS[name]
    cfg = _compose(
        "train",
        [
            "experiment=quickstart",
            *train_overrides,
            f"paths.output_dir={run_dir}",
            "callbacks.progress_bar=null",
            *extra,
        ],
    )
    metrics = train(cfg)
    ckpt = metrics.get("best_ckpt") or metrics.get("last_ckpt")
    trained = int(cfg.model.output_stride)
    for os_ in [trained, *eval_strides]:
        evaluate_checkpoint(ckpt, run_dir, config_dir=CONFIGS, os_=os_, trained_os=trained)
        analyze_checkpoint(
            ckpt, run_dir, config_dir=CONFIGS, os_=os_, trained_os=trained, size=cfg.data.crop_size
        )


def machine() -> str:
    """CPU model (lscpu), cores, torch threads and version, and the load average at the end (the
    machine may be shared: latency figures are only as steady as it was)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln), "?"
        )
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor() or "?"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{model}, {os.cpu_count()} cores, torch {torch.__version__} on {torch.get_num_threads()} "
        f"thread(s) (CPU); load average {load} (1/5/15 min) when the run ended"
    )


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", type=Path, help="existing run root: skip training, redo the doc")
    parser.add_argument("--out-root", type=Path, help="run root (default logs/comparison/<time>)")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "comparison.md")
    parser.add_argument("--assets", type=Path, default=ROOT / "docs" / "comparison")
    parser.add_argument("--designs", nargs="+", choices=sorted(DESIGNS), default=list(DESIGNS))
    return parser.parse_known_args(argv)


@exit_on_user_error
def main(argv: list[str]) -> None:
    args, extra = parse(argv)
    if args.reuse is not None:
        run_root = args.reuse
    else:
        run_root = args.out_root or Path("logs") / "comparison" / time.strftime("%Y-%m-%d_%H-%M-%S")
        run_all(
            run_root,
            args.designs,
            extra,
            command=shlex.join(["python", "scripts/run_comparison.py", *argv]),
        )
    record = provenance(run_root)
    result = compare([run_root], out_dir=args.assets)
    write_comparison_doc(result, doc=args.doc, provenance=record)
    print(f"wrote {args.doc} and {args.assets}/ (runs: {run_root})")


def run_all(run_root: Path, designs: list[str], extra: list[str], *, command: str) -> None:
    """Run every design and record how (command, machine, date, wall time) in the run root."""
    start = time.time()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for name in designs:
        run_design(name, run_root / name, extra)
    record = {
        "command": command,
        "machine": machine(),
        "date": date,
        "wall_s": round(time.time() - start),
        "run_root": str(run_root),
        "designs": {name: DESIGNS[name][0] for name in designs},
        "extra_overrides": extra,
    }
    (run_root / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")


def provenance(run_root: Path) -> dict:
    """The record ``run_all`` left in ``run_root`` (the doc's provenance section)."""
    path = run_root / PROVENANCE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: --reuse takes a run root written by scripts/run_comparison.py"
        )
    return json.loads(path.read_text())


if __name__ == "__main__":
    main(sys.argv[1:])
