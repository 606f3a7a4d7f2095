"""``compare --fill``: evaluate and analyse, inside their own folders, the training runs that lack
it (the jobs of a sweep); also what ``scripts/run_comparison.py`` evaluates and analyses with.

The one place outside ``run_task`` that calls tasks: each config is composed as the command line
would (``compose_config``) and the task runs under its own log (``task_log``), as a Hydra job's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from segkit.cli.configs import compose_config
from segkit.cli.jobs import task_log
from segkit.compare.records import Record, build_records, find_run_folders
from segkit.progress import progress
from segkit.tasks.analyze import analyze
from segkit.tasks.evaluate import evaluate

#: Trimap band widths (px) of the evaluations that compare runs: fine steps near the boundary,
#: up to a quarter of a ~100 px synthetic image.
TRIMAP_WIDTHS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24)
#: Median of this many batch-1 forwards: on a shared machine single runs are noisy.
LATENCY_RUNS = 10


def evaluate_checkpoint(ckpt: str | Path, run_dir: Path, *, os_: int, trained_os: int) -> None:
    """Evaluate ``ckpt`` at output stride ``os_`` (with the trimap curve) into
    ``run_dir/eval_os<os_>``."""
    stride = [f"eval.output_stride={os_}"] if os_ != trained_os else []
    widths = f"[{','.join(map(str, TRIMAP_WIDTHS))}]"
    overrides = [f"ckpt_path={ckpt}", f"paths.output_dir={run_dir / f'eval_os{os_}'}"]
    overrides += [f"eval.trimap_widths={widths}", "eval.device=cpu", *stride]
    with task_log(run_dir / f"eval_os{os_}", "evaluate"):
        evaluate(compose_config("evaluate", overrides))


def analyze_checkpoint(
    ckpt: str | Path,
    run_dir: Path,
    *,
    os_: int,
    trained_os: int,
    size: int,
    erf_size: int | None = None,
) -> None:
    """Analyse ``ckpt`` at output stride ``os_`` into ``run_dir/analysis_os<os_>``: cost at
    ``size`` px (the training crop), the ERF on ``erf_size`` px (default: the analyze config's
    ``erf_input_size``; a crop-sized input would clip the ERF radius)."""
    stride = [f"analyze.output_stride={os_}"] if os_ != trained_os else []
    if erf_size is not None:
        stride.append(f"analyze.erf_input_size={erf_size}")
    overrides = [f"ckpt_path={ckpt}", f"paths.output_dir={run_dir / f'analysis_os{os_}'}"]
    overrides += [f"analyze.input_size={size}", f"analyze.latency_runs={LATENCY_RUNS}"]
    overrides += ["analyze.latency_budget_s=null", *stride]  # all LATENCY_RUNS, however slow
    with task_log(run_dir / f"analysis_os{os_}", "analyze"):
        analyze(compose_config("analyze", overrides))


def fill_missing(dirs: Sequence[str | Path]) -> list[Path]:
    """Evaluate and/or analyse, at its trained output stride and inside its own folder, every
    training run under ``dirs`` that lacks either (e.g. the jobs of a sweep). Returns those runs."""
    todo = [
        rec
        for rec in build_records(find_run_folders(dirs))
        if rec.dirs.get("train") is not None
        and rec.stride == rec.output_stride
        and not (rec.eval and rec.analysis)
    ]
    done = []
    with progress("evaluating + analysing runs", len(todo), unit="run") as advance:
        for rec in todo:
            done.append(_fill(rec))
            advance(1)
    return done


def _fill(rec: Record) -> Path:
    """Evaluate and/or analyse the training run of ``rec`` (see :func:`fill_missing`)."""
    run = rec.dirs["train"]
    ckpt = run / "checkpoints" / "best.ckpt"
    crop = ((rec.config or {}).get("data") or {}).get("crop_size")
    if not ckpt.is_file() or not crop or not rec.output_stride:
        raise FileNotFoundError(
            f"{run}: no checkpoints/best.ckpt or no data.crop_size / model.output_stride in "
            "its config.yaml; only finished segkit training runs can be evaluated"
        )
    os_ = int(rec.output_stride)
    if rec.eval is None:
        evaluate_checkpoint(ckpt, run, os_=os_, trained_os=os_)
    if rec.analysis is None:
        analyze_checkpoint(ckpt, run, os_=os_, trained_os=os_, size=int(crop))
    return run


__all__ = ["analyze_checkpoint", "evaluate_checkpoint", "fill_missing"]
