"""``compare`` task: run folders -> markdown tables, plots and ``records.json``. Evaluating and
analysing the runs that lack it (``--fill``, and scripts/run_comparison.py) is ``segkit.cli.fill``.

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

from segkit.compare.groups import DesignGroup, group_by_seed
from segkit.compare.plots import plot_all
from segkit.compare.records import Record, build_records, find_run_folders
from segkit.compare.table import markdown, sort_records

log = logging.getLogger(__name__)


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
    "record_json",
]
