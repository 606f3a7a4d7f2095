"""Learning curves of a training run: train loss and val mIoU against the step, read from the
run's Lightning CSV log (``csv/metrics.csv``), written beside it as ``learning_curve.csv`` and
``learning_curve.png``, and where the val curve flattened (:func:`plateau`), so that no one
compares models that are still climbing.

Reads files only (no torch), like the rest of ``segkit.compare``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from segkit.runs import CURVE_CSV

#: Where Lightning's CSVLogger (``configs/logger``) writes inside a run folder.
METRICS_CSV = Path("csv") / "metrics.csv"
CURVE_PNG = "learning_curve.png"
#: A val mIoU gain (absolute, 0..1) smaller than this after a step counts as flat.
PLATEAU_TOLERANCE = 0.01


@dataclass(frozen=True)
class Curve:
    """``loss``: (step, train loss) points; ``val``: (step, val mIoU) points, both by step."""

    loss: list[tuple[int, float]]
    val: list[tuple[int, float]]


def read_curve(metrics_csv: str | Path) -> Curve:
    """The ``train/loss`` and ``val/mIoU`` points of a Lightning ``metrics.csv`` (rows are sparse:
    each holds the metrics logged at that step; empty or non-finite cells are skipped)."""
    loss: dict[int, float] = {}
    val: dict[int, float] = {}
    with open(metrics_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            step = row.get("step")
            if not step:
                continue
            for key, out in (("train/loss", loss), ("val/mIoU", val)):
                value = _number(row.get(key))
                if value is not None:
                    out[int(float(step))] = value
    return Curve(sorted(loss.items()), sorted(val.items()))


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class Plateau:
    """``step``: the first validated step after which val mIoU never rose more than ``tolerance``
    above its best so far; None while it still does (the curve is climbing at the end)."""

    step: int | None
    last_step: int
    best: float
    tolerance: float

    def describe(self) -> str:
        if self.step is None:
            return (
                f"still climbing at step {self.last_step}: val mIoU rose more than "
                f"{100 * self.tolerance:.0f} point(s) after every earlier validation"
            )
        return (
            f"flat from step {self.step} (no later val mIoU gain above "
            f"{100 * self.tolerance:.0f} point(s); best {100 * self.best:.2f} %, last step "
            f"{self.last_step})"
        )


def plateau(val: list[tuple[int, float]], tolerance: float = PLATEAU_TOLERANCE) -> Plateau | None:
    """Where the val curve flattened (see :class:`Plateau`); None without two validations.

    The last validation alone never counts as a plateau: at least one later point must confirm
    it, so a run needs a validation after the step it flattened at.
    """
    if len(val) < 2:
        return None
    values = [v for _, v in val]
    best_so_far = -math.inf
    for i, (step, value) in enumerate(val[:-1]):
        best_so_far = max(best_so_far, value)
        if max(values[i + 1 :]) - best_so_far <= tolerance:
            return Plateau(step, val[-1][0], max(values), tolerance)
    return Plateau(None, val[-1][0], max(values), tolerance)


def write_curve(run_dir: str | Path) -> tuple[Path, Path] | None:
    """``learning_curve.csv`` (step, train_loss, val_mIoU) and ``learning_curve.png`` in
    ``run_dir`` from its ``csv/metrics.csv``; None when the run has no CSV log (``logger=none``)."""
    run_dir = Path(run_dir)
    source = run_dir / METRICS_CSV
    if not source.is_file():
        return None
    curve = read_curve(source)
    steps = sorted({s for s, _ in curve.loss} | {s for s, _ in curve.val})
    loss, val = dict(curve.loss), dict(curve.val)
    table = run_dir / CURVE_CSV
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "train_loss", "val_mIoU"])
        for step in steps:
            writer.writerow([step, _cell(loss.get(step)), _cell(val.get(step))])
    picture = run_dir / CURVE_PNG
    plot_curve(curve, picture, title=run_dir.name)
    return table, picture


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def plot_curve(curve: Curve, path: Path, *, title: str = "") -> Path:
    """Train loss (left axis) and val mIoU in % (right axis) against the step, the plateau
    marked when there is one."""
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    if curve.loss:
        ax.plot(*zip(*curve.loss, strict=True), color="tab:gray", lw=1, label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("train loss")
    right = ax.twinx()
    if curve.val:
        steps, values = zip(*curve.val, strict=True)
        right.plot(steps, [100 * v for v in values], "o-", color="tab:red", label="val mIoU")
        flat = plateau(curve.val)
        if flat is not None and flat.step is not None:
            right.axvline(flat.step, color="tab:red", ls=":", lw=1)
        right.set_title(f"{title}: {flat.describe()}" if flat else title, fontsize=8)
    right.set_ylabel("val mIoU (%)")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    if handles:
        ax.legend(handles=handles, loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


__all__ = ["Curve", "Plateau", "plateau", "plot_curve", "read_curve", "write_curve"]
