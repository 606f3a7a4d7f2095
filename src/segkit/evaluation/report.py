"""Evaluation outputs: ``metrics.json`` (schema in docs/metrics.md), a per-class table, plots.

Files written into a run folder: ``metrics.json``, ``confusion_matrix.png`` (row-normalised),
``trimap.png`` (mIoU vs band width, DeepLabv3+ fig. 5) and ``overlays.png`` (best and worst images:
image | ground truth | prediction).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window (headless servers, CI)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from segkit.evaluation.evaluator import EvalResult  # noqa: E402
from segkit.evaluation.overlay import colorize, overlay  # noqa: E402

SCHEMA = "segkit.evaluate/1"


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
        "class_names": list(class_names),
        "per_class_iou": {
            n: _num(v) for n, v in zip(class_names, scores["per_class_iou"], strict=True)
        },
        "per_class_acc": {
            n: _num(v) for n, v in zip(class_names, scores["per_class_acc"], strict=True)
        },
        "confusion_matrix": result.confusion.tolist(),
        "trimap": {
            "widths": sorted(trimap),
            "mIoU": [_num(trimap[w]) for w in sorted(trimap)],
        },
        "best_images": [{"id": i, "mIoU": _num(by_id[i])} for i in best],
        "worst_images": [{"id": i, "mIoU": _num(by_id[i])} for i in worst],
    }


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return path


def print_table(metrics: dict[str, Any], *, console: Console | None = None) -> None:
    """Per-class IoU / accuracy table followed by the summary scores."""
    table = Table(title="per-class scores (%)")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    table.add_column("acc", justify="right")
    for name in metrics["class_names"]:
        iou, acc = metrics["per_class_iou"][name], metrics["per_class_acc"][name]
        table.add_row(name, _pct(iou), _pct(acc))
    table.add_section()
    table.add_row("mIoU", _pct(metrics["mIoU"]), _pct(metrics["mean_class_acc"]))
    console = console or Console()
    console.print(table)
    console.print(
        f"pixel acc {_pct(metrics['pixel_acc'])}  fw IoU {_pct(metrics['fw_IoU'])}  "
        f"images {metrics['num_images']}"
    )
    widths, values = metrics["trimap"]["widths"], metrics["trimap"]["mIoU"]
    if widths:
        pairs = "  ".join(f"{w}px {_pct(v)}" for w, v in zip(widths, values, strict=True))
        console.print(f"trimap mIoU: {pairs}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: str | Path) -> Path:
    """Row-normalised confusion matrix (each ground-truth class sums to 1) as a heatmap PNG."""
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(2 + 0.45 * k, 1.5 + 0.45 * k))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), class_names, fontsize=7)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the class's pixels")
    return _save(fig, path)


def plot_trimap(widths: Sequence[int], miou: Sequence[float | None], path: str | Path) -> Path:
    """Trimap curve: mIoU (%) of the pixels within w px of a boundary, against w."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ys = [np.nan if v is None else 100 * v for v in miou]
    ax.plot(list(widths), ys, marker="o")
    ax.set_xlabel("trimap width (px)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title("boundary (trimap) mIoU")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_overlays(
    rows: Sequence[tuple[str, str, np.ndarray, np.ndarray, np.ndarray]], path: str | Path
) -> Path:
    """Grid, one row per image: image | ground truth overlay | prediction overlay.

    Args:
        rows: ``(title, id, image (H, W, 3) uint8, mask (H, W), prediction (H, W))``.
    """
    n = max(1, len(rows))
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for ax_row, (title, image_id, image, mask, pred) in zip(axes, rows, strict=False):
        panels = (image, overlay(image, mask), overlay(image, pred))
        names = (f"{title}: {image_id}", "ground truth", "prediction")
        for ax, panel, name in zip(ax_row, panels, names, strict=True):
            ax.imshow(panel)
            ax.set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = [
    "SCHEMA",
    "colorize",
    "metrics_dict",
    "plot_confusion",
    "plot_overlays",
    "plot_trimap",
    "print_table",
    "write_json",
]
