"""Design groups -> markdown tables (accuracy; per-class IoU; geometry and cost) and the gaps.

A cell over seeds reads ``mean ± std`` (sample standard deviation over the design's seeds), or
``value (n=1)`` for a design run with one seed: one run measures no spread.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segkit.compare.groups import DesignGroup, trimap_value
from segkit.compare.records import Record
from segkit.compare.stats import Summary

DASH = "—"
#: Marks a latency cell whose analysis flagged its timing (``latency_warning``): see the notes below.
LATENCY_MARK = "⚠"
MODEL_ORDER = ("fcn", "deeplabv3", "deeplabv3plus")
TEXT_COLUMNS = {"design", "backbone", "OS", "varies", "seeds", "ASPP rates at the crop"}


def sort_records(records: Sequence[Record]) -> list[Record]:
    """FCN, DeepLabv3, DeepLabv3+; then backbone, switches, coarse to fine output stride, seed."""

    def key(r: Record) -> tuple:
        order = MODEL_ORDER.index(r.model) if r.model in MODEL_ORDER else len(MODEL_ORDER)
        varies = json.dumps(r.varies, sort_keys=True, default=str)
        return (order, r.design, r.backbone or "", varies, -(r.output_stride or 0),
                -(r.stride or 0), r.seed or 0)  # fmt: skip

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


def size_text(size: Any) -> str:
    """An analysed input size: ``513`` for a square (an analysis.json before [H, W] recorded a
    side), ``360×480`` for H × W; a dash when unknown."""
    if size is None:
        return DASH
    if isinstance(size, int):
        return str(size)
    height, width = (int(v) for v in size)
    return str(height) if height == width else f"{height}×{width}"


def spread(s: Summary | None, fmt: str = "{:.1f}", scale: float = 100.0) -> str:
    """``mean ± std`` over seeds, ``value (n=1)`` for one seed, a dash when unknown."""
    if s is None:
        return DASH
    if s.std is None:
        return f"{fmt.format(s.mean * scale)} (n=1)"
    return f"{fmt.format(s.mean * scale)} ± {fmt.format(s.std * scale)}"


def trimap_widths(groups: Sequence[DesignGroup]) -> list[int]:
    """Two widths to tabulate: the narrowest band evaluated and a middle one."""
    widths = sorted(
        {int(w) for g in groups for r in g.runs
         for w in ((r.eval or {}).get("trimap") or {}).get("widths", [])}
    )  # fmt: skip
    if not widths:
        return []
    return sorted({widths[0], widths[len(widths) // 2]})


def aspp_at_crop(group: DesignGroup) -> tuple[int, int, list[int], list[int]] | None:
    """(crop, feature-map side, ASPP rates, degenerate rates) at the training crop, for a DeepLab
    design with an ASPP trained at its inference stride; None otherwise. A 3x3 atrous branch whose
    rate is at least the map side reads only zero padding off its centre tap, i.e. acts as a 1x1
    conv (DeepLabv3, sec. 3.3). Rates are configured at OS 16 and scaled by 16 / OS, as
    ``segkit.heads.base.scale_rates`` does."""
    model, crop = group.setting("model", {}) or {}, group.setting("data.crop_size")
    if group.model not in ("deeplabv3", "deeplabv3plus") or not crop or not group.output_stride:
        return None
    if model.get("context", "aspp") != "aspp":
        return None
    side = -(-int(crop) // group.output_stride)  # ceil: padded conv stem
    rates = [int(x * 16 / group.output_stride) for x in model.get("aspp_rates") or []]
    return int(crop), side, rates, [x for x in rates if x >= side]


def _aspp_cell(group: DesignGroup) -> str:
    found = aspp_at_crop(group)
    if found is None:
        return DASH
    crop, side, rates, dead = found
    text = f"{'/'.join(map(str, rates))} on {side}×{side}"
    if dead:
        return f"**{len(dead)} of {len(rates)} degenerate** ({text})"
    return f"all real ({text})"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---" if h in TEXT_COLUMNS else "---:" for h in header]
    return "\n".join([_row(header), _row(align), *map(_row, rows)])


def _varies(g: DesignGroup) -> str:
    return ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in g.varies.items()) or DASH


def _os(g: DesignGroup) -> str:
    trained, used = g.output_stride, g.stride
    if trained is None:
        return DASH
    return str(trained) if used in (None, trained) else f"{trained} → {used} (eval)"


def _seeds(g: DesignGroup) -> str:
    seeds = [s for s in g.seeds if s is not None]
    return ", ".join(map(str, seeds)) if seeds else str(g.n)


def accuracy_table(groups: Sequence[DesignGroup]) -> str:
    """Markdown: mIoU (evaluation; best val mIoU in training), boundary mIoU, SegNet's G / C / BF
    (pixel accuracy, class-average accuracy, boundary F1), ASPP at the crop, train steps and time;
    mean ± std over seeds."""
    widths = trimap_widths(groups)
    header = ["#", "design", "backbone", "OS", "varies", "seeds", "mIoU (%)"]
    header += ["val mIoU in training (%)"]
    header += [f"trimap mIoU ≤{w} px (%)" for w in widths]
    header += ["pixel acc (%)", "class acc (%)", "BF (%)"]
    header += ["ASPP rates at the crop", "train steps", "train time (s)"]
    rows = []
    for i, g in enumerate(groups, 1):
        rows.append(
            [
                str(i),
                g.design,
                g.backbone or DASH,
                _os(g),
                _varies(g),
                _seeds(g),
                spread(g.summary(lambda r: (r.eval or {}).get("mIoU"))),
                spread(g.summary(lambda r: (r.train or {}).get("val/mIoU_best"))),
                *[spread(g.summary(lambda r, w=w: trimap_value(r, w))) for w in widths],
                spread(g.summary(lambda r: (r.eval or {}).get("pixel_acc"))),
                spread(g.summary(lambda r: (r.eval or {}).get("mean_class_acc"))),
                spread(g.summary(lambda r: r.bf)),
                _aspp_cell(g),
                num(g.first("train").get("global_step")),
                spread(g.summary(lambda r: (r.train or {}).get("train_time_s")), "{:.0f}", 1.0),
            ]
        )
    return markdown_table(header, rows)


def class_table(groups: Sequence[DesignGroup]) -> str | None:
    """Markdown: per-class IoU (%) of every evaluated design, mean ± std over seeds (which classes
    drive a difference); None when nothing was evaluated."""
    evaluated = [g for g in groups if g.first("eval").get("per_class_iou")]
    if not evaluated:
        return None
    names = list(evaluated[0].first("eval").get("class_names") or [])
    names = names or list(evaluated[0].first("eval")["per_class_iou"])
    header = ["#", "design", "OS", *names]
    rows = []
    for i, g in enumerate(groups, 1):
        if g not in evaluated:
            continue
        cells = [
            spread(g.summary(lambda r, c=c: ((r.eval or {}).get("per_class_iou") or {}).get(c)))
            for c in names
        ]
        rows.append([str(i), g.label.split(",")[0], _os(g), *cells])
    return markdown_table(header, rows)


def cost_table(groups: Sequence[DesignGroup]) -> str:
    """Markdown: strides, theoretical and effective receptive fields, params, MACs, latency."""
    header = ["#", "design", "backbone", "OS", "input (px)", "logits stride", "RF backbone (px)"]
    header += ["RF logits (px)", "ERF r50 (px)", "ERF r90 (px)", "ERF r90 at init (px)"]
    header += ["params (M)", "GMACs", "latency (ms)", "peak mem (MB)"]
    rows = []
    for i, g in enumerate(groups, 1):
        a = g.first("analysis")

        def erf(key: str, radius: str, g: DesignGroup = g) -> Summary | None:
            return g.summary(lambda r: ((r.analysis or {}).get(key) or {}).get(radius))

        rows.append(
            [
                str(i),
                g.design,
                g.backbone or DASH,
                _os(g),
                size_text(a.get("input_size")),
                num(a.get("logits_stride"), "{:g}"),
                num(a.get("backbone_rf")),
                num(a.get("model_rf")),
                spread(erf("erf", "r50"), "{:.0f}", 1.0),
                spread(erf("erf", "r90"), "{:.0f}", 1.0),
                spread(erf("erf_init", "r90"), "{:.0f}", 1.0),
                num(a.get("params") or g.first("train").get("params"), "{:.2f}", 1e-6),
                num(a.get("macs"), "{:.3f}", 1e-9),
                _latency_cell(g),
                num(a.get("peak_mem_mb"), "{:.1f}"),
            ]
        )
    return markdown_table(header, rows)


def _analysis_value(r: Record, key: str) -> Any:
    """A key of a run's analysis, at the top of ``analysis.json`` or under its ``extra``."""
    a = r.analysis or {}
    return a[key] if key in a else (a.get("extra") or {}).get(key)


def _latency_cell(g: DesignGroup) -> str:
    text = spread(g.summary(lambda r: (r.analysis or {}).get("latency_ms")), "{:.1f}", 1.0)
    flagged = any(_analysis_value(r, "latency_warning") for r in g.runs)
    return f"{text} {LATENCY_MARK}" if flagged and text != DASH else text


def latency_notes(groups: Sequence[DesignGroup]) -> str:
    """Markdown bullets: each flagged latency (row, seed, the analysis's warning, runs, spread)."""
    lines = []
    for i, g in enumerate(groups, 1):
        for r in g.runs:
            warning = _analysis_value(r, "latency_warning")
            if not warning:
                continue
            runs, spread_ = _analysis_value(r, "latency_runs"), _analysis_value(r, "latency_spread")
            details = []  # what the warning does not already say (older analyses say less)
            if runs is not None and f"{runs} timed run" not in warning:
                details.append(f"{runs} timed runs")
            spread_known = isinstance(spread_, (int, float))  # (max - min) / median
            if spread_known and "of the median" not in warning:
                details.append(f"spread {100 * spread_:.0f} % of the median")
            seed = f", seed {r.seed}" if r.seed is not None else ""
            extra = f" ({', '.join(details)})" if details else ""
            lines.append(f"- {LATENCY_MARK} row {i} ({g.label}{seed}): {warning}{extra}")
    return "\n".join(lines)


def missing_list(groups: Sequence[DesignGroup]) -> str:
    """Markdown bullets: for each row, the pieces compare could not find (empty when none)."""
    lines = []
    for i, g in enumerate(groups, 1):
        if g.missing:
            where = next(iter(g.dirs.values()), Path("?"))
            lines.append(f"- row {i} ({g.label}, `{where}`): missing {'; '.join(g.missing)}")
    return "\n".join(lines)


def markdown(
    groups: Sequence[DesignGroup], plots: Sequence[Path] = (), *, rel_to: Path | None = None
) -> str:
    """The whole comparison section: the tables, the gaps, and the plots as images."""
    parts = ["### Accuracy", "", accuracy_table(groups), ""]
    classes = class_table(groups)
    if classes:
        parts += ["### Per-class IoU (%)", "", classes, ""]
    parts += ["### Geometry and cost", "", cost_table(groups), ""]
    notes = latency_notes(groups)
    if notes:
        parts += [f"Latencies marked {LATENCY_MARK} are unreliable:", "", notes, ""]
    gaps = missing_list(groups)
    if gaps:
        parts += ["### Missing pieces (shown as —)", "", gaps, ""]
    for plot in plots:
        link = plot.relative_to(rel_to) if rel_to and plot.is_relative_to(rel_to) else plot
        parts += [f"![{plot.stem}]({link.as_posix()})", ""]
    return "\n".join(parts)
