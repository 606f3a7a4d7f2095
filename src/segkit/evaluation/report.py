"""Evaluation outputs: ``metrics.json`` (schema in docs/metrics.md), a per-class table, plots.

Files written into a run folder: ``metrics.json``, ``confusion_matrix.png`` (row-normalised),
``trimap.png`` (mIoU vs band width, DeepLabv3+ fig. 5) and ``overlays.png`` (best and worst images:
image | ground truth | prediction, each row titled with the image's mIoU, a class legend below).

Figures are ``matplotlib.figure.Figure`` objects saved directly (as ``segkit.compare.plots``): no
pyplot, so importing this module chooses no GUI backend. :func:`label_grid` is the one figure of
label maps (evaluate's overlays, the inspect grid, the demo picture), always with a class legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from rich.console import Console
from rich.table import Table

from segkit.data.classes import ClassInfo
from segkit.evaluation.evaluator import EvalResult
from segkit.evaluation.overlay import colorize, legend_entries, overlay, present_labels
from segkit.runs import EVALUATE_SCHEMA

#: 2: ``BF`` and ``per_class_bf`` (boundary F1, SegNet's metric set G / C / mIoU / BF) added.
SCHEMA = EVALUATE_SCHEMA


def _num(x: float) -> float | None:
    """JSON has no NaN: undefined scores (class absent everywhere) become null."""
    return None if x is None or math.isnan(x) else float(x)


def metrics_dict(
    result: EvalResult,
    class_names: Sequence[str],
    settings: dict[str, Any],
    *,
    best: Sequence[str] = (),
    worst: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``metrics.json`` document (see docs/metrics.md for every key)."""
    scores = result.scores()
    trimap = result.trimap_miou()
    by_id = dict(zip(result.image_ids, result.image_miou, strict=True))
    return {
        "schema": SCHEMA,
        "settings": dict(settings),
        "num_images": result.num_images,
        **{k: _num(scores[k]) for k in ("mIoU", "pixel_acc", "mean_class_acc", "fw_IoU")},
        "BF": _num(scores.get("BF")),
        "class_names": list(class_names),
        **{
            key: {n: _num(v) for n, v in zip(class_names, scores[key], strict=True)}
            for key in ("per_class_iou", "per_class_acc", "per_class_bf")
            if key in scores
        },
        "confusion_matrix": result.confusion.tolist(),
        "trimap": {
            "widths": sorted(trimap),
            "mIoU": [_num(trimap[w]) for w in sorted(trimap)],
        },
        "best_images": [{"id": i, "mIoU": _num(by_id[i])} for i in best],
        "worst_images": [{"id": i, "mIoU": _num(by_id[i])} for i in worst],
    }


def print_table(metrics: dict[str, Any], *, console: Console | None = None) -> None:
    """Per-class IoU / accuracy (/ boundary F1) table followed by the summary scores: SegNet's set
    G (pixel accuracy), C (class-average accuracy), mIoU and BF (boundary F1), then fw IoU."""
    bf = metrics.get("per_class_bf")
    table = Table(title="per-class scores (%)")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    table.add_column("acc", justify="right")
    if bf is not None:
        table.add_column("BF", justify="right")
    for name in metrics["class_names"]:
        iou, acc = metrics["per_class_iou"][name], metrics["per_class_acc"][name]
        table.add_row(name, _pct(iou), _pct(acc), *([_pct(bf[name])] if bf is not None else []))
    table.add_section()
    means = [_pct(metrics["mIoU"]), _pct(metrics["mean_class_acc"])]
    table.add_row("mean", *means, *([_pct(metrics.get("BF"))] if bf is not None else []))
    console = console or Console()
    console.print(table)
    console.print(
        f"G (pixel acc) {_pct(metrics['pixel_acc'])}  C (class avg acc) "
        f"{_pct(metrics['mean_class_acc'])}  mIoU {_pct(metrics['mIoU'])}  "
        f"BF {_pct(metrics.get('BF'))}  fw IoU {_pct(metrics['fw_IoU'])}  "
        f"images {metrics['num_images']}"
    )
    widths, values = metrics["trimap"]["widths"], metrics["trimap"]["mIoU"]
    if widths:
        pairs = "  ".join(f"{w}px {_pct(v)}" for w, v in zip(widths, values, strict=True))
        console.print(f"trimap mIoU: {pairs}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


#: A grid cell: (title, RGB image (H, W, 3) uint8, labels (H, W) to draw on it, or None).
Cell = tuple[str, np.ndarray, "np.ndarray | None"]


def label_grid_figure(
    rows: Sequence[Sequence[Cell]],
    classes: ClassInfo,
    *,
    colour_maps: bool = False,
    void: bool = False,
    title: str | None = None,
) -> Figure:
    """A grid of pictures with a legend of the classes drawn in it (colour swatch + class name).

    Args:
        rows: one sequence of cells per grid row (rows may be shorter than the longest).
        classes: the dataset's classes (names and colours of the legend and the labels).
        colour_maps: draw labels as plain colour maps (background in its palette colour) instead of
            blending them onto the image (``classes.background`` and void left as the image).
        void: draw void (255) pixels too (in the overlay style they are otherwise left out).
        title: figure title.
    """
    n_rows, n_cols = max(1, len(rows)), max([1, *map(len, rows)])
    maps = [labels for row in rows for _, _, labels in row if labels is not None]
    shown = present_labels(maps, classes.num_classes)
    if not colour_maps:
        shown = [k for k in shown if k != classes.background and (void or k < classes.num_classes)]
    entries = legend_entries(shown, classes)
    legend_cols = max(1, min(n_cols + 1, len(entries)))
    legend_h = 0.15 + 0.25 * (-(-len(entries) // legend_cols))
    fig = Figure(figsize=(2.6 * n_cols, 2.6 * n_rows + legend_h + (0.3 if title else 0)))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax_row, row in zip(axes, rows, strict=False):
        for ax, (name, image, labels) in zip(ax_row, row, strict=False):
            if labels is not None:
                image = (
                    colorize(labels, classes)
                    if colour_maps
                    else overlay(image, labels, classes, void=void)
                )
            ax.imshow(image, interpolation="nearest")
            ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    bottom = legend_h / fig.get_figheight()
    if entries:
        handles = [Patch(facecolor=rgb, edgecolor="black", label=n) for n, rgb in entries]
        fig.legend(handles=handles, loc="lower center", ncol=legend_cols, fontsize=8,
                   frameon=False, bbox_to_anchor=(0.5, 0.0))  # fmt: skip
    fig.tight_layout(rect=(0, bottom, 1, 1), h_pad=1.2)
    return fig


def label_grid(
    rows: Sequence[Sequence[Cell]], classes: ClassInfo, path: str | Path, **kwargs: Any
) -> Path:
    """:func:`label_grid_figure` written to ``path`` (PNG); returns the path."""
    return _save(label_grid_figure(rows, classes, **kwargs), path, tight=False)


def confusion_figure(cm: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Row-normalised confusion matrix (each ground-truth class sums to 1) as a heatmap. A class
    absent from the ground truth has no row to normalise: its row is grey and hatched and its name
    says so, unlike a class that is present and always wrong (a dark diagonal cell)."""
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.full_like(cm, np.nan), where=rows > 0)
    absent = np.flatnonzero(rows[:, 0] == 0)
    k = len(class_names)
    fig = Figure(figsize=(2.5 + 0.45 * k, 1.8 + 0.45 * k))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    im = ax.imshow(np.ma.masked_invalid(norm), vmin=0, vmax=1, cmap=cmap)
    for i in absent:
        ax.add_patch(Rectangle((-0.5, i - 0.5), k, 1, fill=False, hatch="//", edgecolor="grey",
                               linewidth=0))  # fmt: skip
    names = [f"{n} (not in GT)" if i in absent else n for i, n in enumerate(class_names)]
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    if len(absent):
        ax.set_title("hatched grey rows: classes absent from the ground truth", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the class's pixels")
    return fig


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: str | Path) -> Path:
    """:func:`confusion_figure` written to ``path``."""
    return _save(confusion_figure(cm, class_names), path)


def plot_trimap(widths: Sequence[int], miou: Sequence[float | None], path: str | Path) -> Path:
    """Trimap curve: mIoU (%) of the pixels within w px of a boundary, against w."""
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ys = [np.nan if v is None else 100 * v for v in miou]
    ax.plot(list(widths), ys, marker="o")
    ax.set_xlabel("trimap width (px)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title("boundary (trimap) mIoU")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_overlays(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    classes: ClassInfo,
    path: str | Path,
) -> Path:
    """Grid, one row per image: image | ground truth overlay | prediction overlay, with a legend.

    Args:
        rows: ``(title, image (H, W, 3) uint8, mask (H, W), prediction (H, W))``; the title names
            the image (evaluate: ``best: <id> (mIoU 71.3 %)``).
    """
    cells = [
        [(title, image, None), ("ground truth", image, mask), ("prediction", image, pred)]
        for title, image, mask, pred in rows
    ]
    return label_grid(cells, classes, path)


def _save(fig: Figure, path: str | Path, *, tight: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:  # label grids lay themselves out around their legend
        fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


__all__ = [
    "SCHEMA",
    "colorize",
    "confusion_figure",
    "label_grid",
    "label_grid_figure",
    "metrics_dict",
    "plot_confusion",
    "plot_overlays",
    "plot_trimap",
    "print_table",
]
