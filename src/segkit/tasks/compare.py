"""``compare`` task: run folders -> markdown tables, plots and ``records.json``; evaluating and
analysing the runs that lack it (``--fill``, and scripts/run_comparison.py).

Output folder: ``comparison.md`` (the tables, the missing pieces, the plots), ``records.json`` (one
entry per run, machine-readable, with its design row) and the PNGs of ``segkit.compare.plots``. Runs
that differ only in ``seed`` are one row (``segkit.compare.groups``), shown as mean ± std.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segkit.cli.configs import compose_config
from segkit.cli.jobs import task_log
from segkit.compare.groups import DesignGroup, group_by_seed
from segkit.compare.plots import plot_all
from segkit.compare.records import Record, build_records, find_run_folders
from segkit.compare.table import markdown, sort_records
from segkit.progress import progress
from segkit.tasks.analyze import analyze
from segkit.tasks.evaluate import evaluate

log = logging.getLogger(__name__)

#: Trimap band widths (px) of the evaluations that compare runs: fine steps near the boundary,
#: up to a quarter of a ~100 px synthetic image.
TRIMAP_WIDTHS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24)
#: Median of this many batch-1 forwards: on a shared machine single runs are noisy.
LATENCY_RUNS = 10


@dataclass
class CompareResult:
    """What ``compare`` found and wrote."""

    records: list[Record]
    groups: list[DesignGroup]
    plots: list[Path]
    skipped_plots: list[str]
    out_dir: Path

    def section(self, rel_to: Path | None = None) -> str:
        """The markdown tables + plots, image links relative to ``rel_to``."""
        return markdown(self.groups, self.plots, rel_to=rel_to)


def compare(dirs: Sequence[str | Path], *, out_dir: str | Path) -> CompareResult:
    """Read every run folder under ``dirs`` and write the comparison into ``out_dir``.

    Raises:
        FileNotFoundError / ValueError: a DIR is missing or holds no segkit run (named).
    """
    if not dirs:
        raise ValueError("give at least one run folder (or multirun folder) to compare")
    records = sort_records(build_records(find_run_folders(dirs)))
    if not records:
        raise ValueError(
            f"{', '.join(map(str, dirs))}: no training, evaluation or analysis run found (only "
            "other tasks' folders); give folders written by scripts/train.py, evaluate.py or "
            "analyze.py"
        )
    groups = group_by_seed(records)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots, skipped = plot_all(groups, out)
    result = CompareResult(records, groups, plots, skipped, out)
    text = ["# segkit comparison", "", f"Run folders: {', '.join(f'`{d}`' for d in dirs)}", ""]
    if skipped:
        text += [f"Plots not drawn (no row has their data): {', '.join(skipped)}", ""]
    (out / "comparison.md").write_text("\n".join([*text, result.section(out)]) + "\n")
    rows = [record_json(r, row=i) for i, g in enumerate(groups, 1) for r in g.runs]
    (out / "records.json").write_text(json.dumps(rows, indent=2))
    log.info("comparison of %d rows written to %s", len(records), out)
    return result


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


def record_json(rec: Record, *, row: int | None = None) -> dict[str, Any]:
    """A run as JSON: its table row, identity, the headline figures, where each piece came from."""
    a, e, t = rec.analysis or {}, rec.eval or {}, rec.train or {}
    return {
        "row": row,
        "label": rec.label,
        "seed": rec.seed,
        "tags": rec.tags,
        "design": rec.design,
        "model": rec.model,
        "backbone": rec.backbone,
        "output_stride": rec.output_stride,
        "eval_output_stride": rec.eval_output_stride,
        "varies": rec.varies,
        "mIoU": rec.miou,
        "val_mIoU_best": t.get("val/mIoU_best"),
        "trimap": e.get("trimap"),
        **{k: e.get(k) for k in ("pixel_acc", "mean_class_acc")},
        "BF": rec.bf,
        **{k: a.get(k) for k in ("params", "macs", "latency_ms", "peak_mem_mb", "input_size")},
        **{k: a.get(k) for k in ("logits_stride", "backbone_rf", "model_rf", "erf", "erf_init")},
        "train_time_s": t.get("train_time_s"),
        "dirs": {k: str(v) for k, v in rec.dirs.items()},
        "missing": rec.missing,
    }


__all__ = [
    "CompareResult",
    "compare",
    "analyze_checkpoint",
    "evaluate_checkpoint",
    "fill_missing",
    "record_json",
]
