"""Regenerate docs/comparison.md: train FCN vs DeepLab designs on the built-in synthetic data (CPU)
over several seeds, evaluate each best checkpoint (with the trimap curve and per-image confusion
matrices), analyse it (RF, ERF, cost), then compare with paired-bootstrap confidence intervals.

    python scripts/run_comparison.py                 # experiment=comparison, 289 px crop, 3 seeds
    python scripts/run_comparison.py --fast          # experiment=quickstart, 96 px crop (ASPP degenerate)
    python scripts/run_comparison.py --reuse logs/comparison/<time>   # only compare + doc again
    python scripts/run_comparison.py --out-root logs/comparison/<time>  # finish an interrupted run
    python scripts/run_comparison.py trainer.max_steps=50              # extra overrides for training

Run folders go to <root>/<design>/seed<k>/ (train), .../eval_os<N>/ (evaluate) and
.../analysis_os<N>/ (analyze); a run folder that already holds both is kept, so an interrupted run
continues where it stopped. The doc goes to --doc and its plots to --assets (for --fast by default
into the run root, so docs/ keeps the large comparison).
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

from comparison_doc import write_comparison_doc  # scripts/: the doc is this script's job
from segkit.cli.configs import compose_config
from segkit.cli.fill import analyze_checkpoint, evaluate_checkpoint
from segkit.cli.jobs import exit_on_user_error, task_log
from segkit.cli.run_folders import claim_dir
from segkit.progress import progress
from segkit.tasks.compare import compare
from segkit.tasks.train import train

ROOT = Path(__file__).resolve().parents[1]

#: name -> training overrides (on top of the experiment), and extra evaluation strides.
DESIGNS: dict[str, tuple[list[str], list[int]]] = {
    "fcn32s_os32": (["model=fcn", "model.fcn_variant=32s", "model.output_stride=32"], []),
    "fcn8s_os32": (["model=fcn", "model.fcn_variant=8s", "model.output_stride=32"], []),
    "deeplabv3_os16": (["model=deeplabv3", "model.output_stride=16"], []),
    "deeplabv3plus_os16": (["model=deeplabv3plus", "model.output_stride=16"], [8]),
    "deeplabv3plus_os8": (["model=deeplabv3plus", "model.output_stride=8"], []),
    "deeplabv3plus_os16_nocontext": (
        ["model=deeplabv3plus", "model.output_stride=16", "model.context=none"],
        [],
    ),
}
#: --fast / default: the experiment config, and the ERF input side of the analyses (about twice the
#: crop, so the radii are not clipped by the input).
SCALES: dict[str, tuple[str, int]] = {"fast": ("quickstart", 257), "large": ("comparison", 513)}
SEEDS = (1, 2, 3)
PROVENANCE = "comparison_run.json"
DOC, ASSETS = ROOT / "docs" / "comparison.md", ROOT / "docs" / "comparison"


def run_design(name: str, run_dir: Path, extra: list[str], *, scale: str, seed: int) -> None:
    """Train one design with one seed, then evaluate and analyse its best checkpoint at each
    output stride. A folder whose every evaluation and analysis exists is left as it is."""
    train_overrides, eval_strides = DESIGNS[name]
    experiment, erf_size = SCALES[scale]
    cfg = compose_config(
        "train",
        [
            f"experiment={experiment}",
            *train_overrides,
            f"seed={seed}",
            f"paths.output_dir={run_dir}",
            "callbacks.progress_bar=null",
            *extra,
        ],
    )
    trained = int(cfg.model.output_stride)
    strides = [trained, *eval_strides]
    done = [run_dir / f"{kind}_os{os_}" / name_ for os_ in strides
            for kind, name_ in (("eval", "metrics.json"), ("analysis", "analysis.json"))]  # fmt: skip
    if all(p.is_file() for p in done):
        print(f"kept {run_dir} (already trained, evaluated and analysed)")
        return
    with task_log(run_dir, "train"):
        metrics = train(cfg)
    ckpt = metrics.get("best_ckpt") or metrics.get("last_ckpt")
    for os_ in strides:
        evaluate_checkpoint(ckpt, run_dir, os_=os_, trained_os=trained)
        analyze_checkpoint(
            ckpt,
            run_dir,
            os_=os_,
            trained_os=trained,
            size=cfg.data.crop_size,
            erf_size=erf_size,
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
    parser.add_argument("--doc", type=Path, help=f"default {DOC.relative_to(ROOT)}")
    parser.add_argument("--assets", type=Path, help=f"default {ASSETS.relative_to(ROOT)}/")
    parser.add_argument("--designs", nargs="+", choices=sorted(DESIGNS), default=list(DESIGNS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), help="training seeds")
    parser.add_argument(
        "--fast", action="store_true", help="the small 96 px quickstart scale (minutes, not hours)"
    )
    return parser.parse_known_args(argv)


@exit_on_user_error
def main(argv: list[str]) -> None:
    args, extra = parse(argv)
    scale = "fast" if args.fast else "large"
    if args.reuse is not None:
        run_root = args.reuse
    else:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        # a fresh root is claimed (stamp, stamp_1, ...): two runs started together never share it
        run_root = args.out_root or Path(
            claim_dir(str(Path("logs") / f"comparison-{scale}" / stamp))
        )
        run_all(
            run_root,
            args.designs,
            extra,
            scale=scale,
            seeds=args.seeds,
            command=shlex.join(["python", "scripts/run_comparison.py", *argv]),
        )
    record = provenance(run_root)
    doc, assets = args.doc, args.assets
    if record.get("scale") == "fast" and doc is None:
        doc, assets = run_root / "comparison.md", assets or run_root / "comparison"
    doc, assets = doc or DOC, assets or ASSETS
    result = compare([run_root], out_dir=assets)
    write_comparison_doc(result, doc=doc, provenance=record)
    print(f"wrote {doc} and {assets}/ (runs: {run_root})")


def run_all(
    run_root: Path,
    designs: list[str],
    extra: list[str],
    *,
    scale: str,
    seeds: list[int],
    command: str,
) -> None:
    """Run every design for every seed (seed-major: an interrupted run still holds whole seeds)
    and record how (command, machine, date, wall time) in the run root."""
    start = time.time()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with progress("comparison runs", len(seeds) * len(designs), unit="run") as advance:
        for seed in seeds:
            for name in designs:
                run_design(name, run_root / name / f"seed{seed}", extra, scale=scale, seed=seed)
                advance(1)
    record = {
        "command": command,
        "machine": machine(),
        "date": date,
        "wall_s": round(time.time() - start),
        "run_root": str(run_root),
        "scale": scale,
        "experiment": SCALES[scale][0],
        "seeds": list(seeds),
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
