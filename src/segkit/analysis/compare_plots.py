"""Comparison plots (matplotlib Agg, PNG files): mIoU vs multiply-adds, mIoU vs output stride,
trimap curves, ERF heatmaps side by side, params / multiply-adds / latency.

Each ``plot_*`` returns the path written, or None when no record holds the data it needs (the caller
lists skipped plots; nothing is drawn empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from segkit.analysis.compare import Record  # noqa: E402

#: One colour per design family, so FCN vs DeepLab reads the same in every plot.
COLORS = {"fcn": "tab:blue", "deeplabv3": "tab:green", "deeplabv3plus": "tab:red"}
MARKERS = "osD^v<>p*h"


def _color(rec: Record) -> str:
    return COLORS.get(rec.model or "", "tab:gray")


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    # JPEG for the tiled heatmaps: their per-pixel noise makes a PNG megabytes large
    extra = {"pil_kwargs": {"quality": 85}} if path.suffix == ".jpg" else {}
    fig.savefig(path, dpi=100, **extra)
    plt.close(fig)
    return path


def _groups(records: Sequence[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(r.group, []).append(r)
    return out


def plot_miou_vs_macs(records: Sequence[Record], path: Path) -> Path | None:
    """Scatter: mIoU (evaluation, else best val) against multiply-adds at the analysed input size."""
    points = [r for r in records if r.miou is not None and (r.analysis or {}).get("macs")]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, r in enumerate(points):
        x, y = r.analysis["macs"] / 1e9, 100 * r.miou
        ax.scatter(x, y, color=_color(r), marker=MARKERS[i % 10], s=50, label=r.label)
    sizes = sorted({r.analysis.get("input_size") for r in points})
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(f"GMACs per image at {'/'.join(map(str, sizes))} px (log)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title("accuracy vs cost")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def plot_miou_vs_os(records: Sequence[Record], path: Path) -> Path | None:
    """mIoU against the inference output stride, one line per design (trained OS in the legend)."""
    points = [r for r in records if r.miou is not None and r.stride]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (group, recs) in enumerate(_groups(points).items()):
        for trained in sorted({r.output_stride for r in recs}, key=lambda x: x or 0):
            line = sorted((r for r in recs if r.output_stride == trained), key=lambda r: r.stride)
            ax.plot(
                [r.stride for r in line],
                [100 * r.miou for r in line],
                marker=MARKERS[i % 10],
                color=_color(line[0]),
                ls="-" if len(line) > 1 else "",
                label=f"{group}, trained at OS {trained}",
            )
    ax.set_xscale("log", base=2)
    ax.set_xticks([8, 16, 32], ["8", "16", "32"])
    ax.set_xlabel("output stride at inference")
    ax.set_ylabel("mIoU (%)")
    ax.set_title("mIoU vs output stride")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_trimap(records: Sequence[Record], path: Path) -> Path | None:
    """Trimap curves (DeepLabv3+ paper fig. 5): mIoU of the pixels within w px of a boundary."""
    curves = [r for r in records if ((r.eval or {}).get("trimap") or {}).get("widths")]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, r in enumerate(curves):
        t = r.eval["trimap"]
        ys = [float("nan") if v is None else 100 * v for v in t["mIoU"]]
        ax.plot(
            t["widths"],
            ys,
            marker=MARKERS[i % 10],
            color=_color(r),
            label=r.label,
            ls="--" if r.output_stride != r.stride else "-",
        )
    ax.set_xlabel("trimap band width (px)")
    ax.set_ylabel("mIoU within the band (%)")
    ax.set_title("boundary accuracy (trimap)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_cost(records: Sequence[Record], path: Path) -> Path | None:
    """Bars: params (M), GMACs and CPU latency (ms) per row."""
    rows = [r for r in records if r.analysis]
    if not rows:
        return None
    panels = (
        ("params", "params (M)", 1e-6),
        ("macs", "GMACs", 1e-9),
        ("latency_ms", "CPU latency (ms)", 1.0),
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 1.8 + 0.35 * len(rows)), sharey=True)
    ys = range(len(rows))
    for ax, (key, title, scale) in zip(axes, panels, strict=True):
        values = [(r.analysis.get(key) or 0) * scale for r in rows]
        ax.barh(ys, values, color=[_color(r) for r in rows])
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(list(ys), [r.label for r in rows], fontsize=7)
    axes[0].invert_yaxis()
    sizes = sorted({r.analysis.get("input_size") for r in rows})
    fig.suptitle(f"cost at {'/'.join(map(str, sizes))} px, batch 1")
    return _save(fig, path)


def plot_erf_side_by_side(records: Sequence[Record], path: Path) -> Path | None:
    """The ERF heatmaps each analysis wrote (``erf.png``, and ``erf_init.png`` of a checkpoint's
    fresh twin), one row per record: trained | freshly initialised."""
    rows = []
    for r in records:
        folder = r.dirs.get("analysis")
        images = [folder / n for n in ("erf.png", "erf_init.png")] if folder else []
        images = [p for p in images if p.is_file()]
        if images:
            rows.append((r, images))
    if not rows:
        return None
    cols = max(len(images) for _, images in rows)
    # half the heatmaps' own resolution: readable, and a few hundred kB instead of megabytes
    fig, axes = plt.subplots(len(rows), cols, figsize=(4.6 * cols, 2.6 * len(rows)), squeeze=False)
    for ax_row, (r, images) in zip(axes, rows, strict=True):
        for j, ax in enumerate(ax_row):
            ax.axis("off")
            if j < len(images):
                ax.imshow(mpimg.imread(images[j]))
                ax.set_title(f"{r.label}: {_erf_kind(r, images[j])}", fontsize=8)
    return _save(fig, path)


def _erf_kind(rec: Record, image: Path) -> str:
    if image.name == "erf_init.png":
        return "freshly initialised"
    return "trained" if (rec.analysis or {}).get("ckpt_path") else "freshly initialised"


#: file name -> plot function
PLOTS = {
    "miou_vs_macs.png": plot_miou_vs_macs,
    "miou_vs_output_stride.png": plot_miou_vs_os,
    "trimap.png": plot_trimap,
    "erf.jpg": plot_erf_side_by_side,
    "cost.png": plot_cost,
}


def plot_all(records: Sequence[Record], out_dir: Path) -> tuple[list[Path], list[str]]:
    """Every plot of ``PLOTS`` into ``out_dir``; returns (written paths, names of the plots skipped
    for lack of data)."""
    written, skipped = [], []
    for name, fn in PLOTS.items():
        result = fn(records, Path(out_dir) / name)
        (written.append(result) if result else skipped.append(Path(name).stem))
    return written, skipped
