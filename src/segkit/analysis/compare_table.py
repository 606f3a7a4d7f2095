"""Comparison records -> markdown tables (accuracy; geometry and cost) and the list of gaps."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segkit.analysis.compare import Record

DASH = "—"
MODEL_ORDER = ("fcn", "deeplabv3", "deeplabv3plus")
TEXT_COLUMNS = {"design", "backbone", "OS", "varies"}


def sort_records(records: Sequence[Record]) -> list[Record]:
    """FCN, DeepLabv3, DeepLabv3+; then backbone, switches, coarse to fine output stride."""

    def key(r: Record) -> tuple:
        order = MODEL_ORDER.index(r.model) if r.model in MODEL_ORDER else len(MODEL_ORDER)
        varies = json.dumps(r.varies, sort_keys=True, default=str)
        return (
            order,
            r.design,
            r.backbone or "",
            varies,
            -(r.output_stride or 0),
            -(r.stride or 0),
        )

    return sorted(records, key=key)


def pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage, or a dash when unknown."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    return f"{100 * x:.{digits}f}"


def num(x: Any, fmt: str = "{:,.0f}", scale: float = 1.0) -> str:
    if x is None:
        return DASH
    if isinstance(x, str):  # "global" receptive field
        return x
    return fmt.format(x * scale)


def trimap_at(rec: Record, width: int) -> float | None:
    """Evaluation mIoU within ``width`` px of a boundary (None when not evaluated at that width)."""
    trimap = (rec.eval or {}).get("trimap") or {}
    for w, v in zip(trimap.get("widths", []), trimap.get("mIoU", []), strict=False):
        if int(w) == width:
            return v
    return None


def trimap_widths(records: Sequence[Record]) -> list[int]:
    """Two widths to tabulate: the narrowest band evaluated and a middle one."""
    widths = sorted(
        {int(w) for r in records for w in ((r.eval or {}).get("trimap") or {}).get("widths", [])}
    )
    if not widths:
        return []
    return sorted({widths[0], widths[len(widths) // 2]})


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---" if h in TEXT_COLUMNS else "---:" for h in header]
    return "\n".join([_row(header), _row(align), *map(_row, rows)])


def _varies(rec: Record) -> str:
    return ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in rec.varies.items()) or DASH


def _os(rec: Record) -> str:
    trained, used = rec.output_stride, rec.stride
    if trained is None:
        return DASH
    return str(trained) if used in (None, trained) else f"{trained} → {used} (eval)"


def accuracy_table(records: Sequence[Record]) -> str:
    """Markdown: mIoU (evaluation, and best val mIoU during training), boundary mIoU, train time."""
    widths = trimap_widths(records)
    header = ["#", "design", "backbone", "OS", "varies", "mIoU (%)", "val mIoU in training (%)"]
    header += [f"trimap mIoU ≤{w} px (%)" for w in widths]
    header += ["pixel acc (%)", "train steps", "train time (s)"]
    rows = []
    for i, r in enumerate(records, 1):
        train = r.train or {}
        rows.append(
            [
                str(i),
                r.design,
                r.backbone or DASH,
                _os(r),
                _varies(r),
                pct((r.eval or {}).get("mIoU")),
                pct(train.get("val/mIoU_best")),
                *[pct(trimap_at(r, w)) for w in widths],
                pct((r.eval or {}).get("pixel_acc")),
                num(train.get("global_step")),
                num(train.get("train_time_s")),
            ]
        )
    return _table(header, rows)


def cost_table(records: Sequence[Record]) -> str:
    """Markdown: strides, theoretical and effective receptive fields, params, MACs, latency."""
    header = ["#", "design", "backbone", "OS", "input (px)", "logits stride", "RF backbone (px)"]
    header += ["RF logits (px)", "ERF r50 / r90 (px)", "ERF r50 / r90 at init (px)"]
    header += ["params (M)", "GMACs", "latency (ms)", "peak mem (MB)"]
    rows = []
    for i, r in enumerate(records, 1):
        a = r.analysis or {}
        rows.append(
            [
                str(i),
                r.design,
                r.backbone or DASH,
                _os(r),
                num(a.get("input_size")),
                num(a.get("logits_stride"), "{:g}"),
                num(a.get("backbone_rf")),
                num(a.get("model_rf")),
                _erf(a.get("erf")),
                _erf(a.get("erf_init")),
                num(a.get("params") or (r.train or {}).get("params"), "{:.2f}", 1e-6),
                num(a.get("macs"), "{:.3f}", 1e-9),
                num(a.get("latency_ms"), "{:.1f}"),
                num(a.get("peak_mem_mb"), "{:.1f}"),
            ]
        )
    return _table(header, rows)


def _erf(erf: dict | None) -> str:
    if not erf:
        return DASH
    return f"{erf['r50']:.0f} / {erf['r90']:.0f}"


def missing_list(records: Sequence[Record]) -> str:
    """Markdown bullets: for each row, the pieces compare could not find (empty when none)."""
    lines = []
    for i, r in enumerate(records, 1):
        if r.missing:
            where = next(iter(r.dirs.values()), Path("?"))
            lines.append(f"- row {i} ({r.label}, `{where}`): missing {'; '.join(r.missing)}")
    return "\n".join(lines)


def markdown(records: Sequence[Record], plots: Sequence[Path] = (), *, rel_to: Path | None = None):
    """The whole comparison section: both tables, the gaps, and the plots as images."""
    parts = ["### Accuracy", "", accuracy_table(records), "", "### Geometry and cost", ""]
    parts += [cost_table(records), ""]
    gaps = missing_list(records)
    if gaps:
        parts += ["### Missing pieces (shown as —)", "", gaps, ""]
    for plot in plots:
        link = plot.relative_to(rel_to) if rel_to and plot.is_relative_to(rel_to) else plot
        parts += [f"![{plot.stem}]({link.as_posix()})", ""]
    return "\n".join(parts)
