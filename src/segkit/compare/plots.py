"""Comparison plots (PNG/JPEG files): mIoU vs multiply-adds, mIoU vs output stride, trimap curves,
ERF heatmaps side by side, params / multiply-adds / latency. One mark per design (its runs over
seeds): the mean, with error bars (or a shaded band) of ± one standard deviation over seeds when a
design has more than one.

Figures are ``matplotlib.figure.Figure`` objects saved directly: no pyplot, so no GUI backend is
chosen or needed. Each ``plot_*`` returns the path written, or None when no design holds the data
it needs (the caller lists skipped plots; nothing is drawn empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.image as mpimg
from matplotlib import ticker
from matplotlib.figure import Figure

from segkit.compare.groups import DesignGroup
from segkit.compare.stats import Summary
from segkit.compare.table import size_text

#: One colour per design family, so FCN vs DeepLab reads the same in every plot.
COLORS = {"fcn": "tab:blue", "deeplabv3": "tab:green", "deeplabv3plus": "tab:red"}
MARKERS = "osD^v<>p*h"


def _color(g: DesignGroup) -> str:
    return COLORS.get(g.model or "", "tab:gray")


def _label(g: DesignGroup) -> str:
    return f"{g.label} (n={g.n})" if g.n > 1 else f"{g.label} (1 seed)"


#: The y axis of the mIoU plots.
MIOU_AXIS = "mIoU (%), mean ± std over seeds"


def _pct(s: Summary) -> tuple[float, float]:
    return 100 * s.mean, 100 * (s.std or 0.0)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    # JPEG for the tiled heatmaps: their per-pixel noise makes a PNG megabytes large
    extra = {"pil_kwargs": {"quality": 85}} if path.suffix == ".jpg" else {}
    fig.savefig(path, dpi=100, **extra)
    return path


def _finish(fig: Figure, ax, path: Path, labels: tuple[str, str, str], *, grid=None, legend=None):
    """x label, y label and title, a light grid and a small legend, then :func:`_save`."""
    ax.set(xlabel=labels[0], ylabel=labels[1], title=labels[2])
    ax.grid(alpha=0.3, **(grid or {}))
    ax.legend(fontsize=7, **(legend or {}))
    return _save(fig, path)


def plot_miou_vs_macs(groups: Sequence[DesignGroup], path: Path) -> Path | None:
    """mIoU (mean ± std over seeds) against multiply-adds at the analysed input size."""
    points = [g for g in groups if g.miou is not None and g.first("analysis").get("macs")]
    if not points:
        return None
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    for i, g in enumerate(points):
        y, err = _pct(g.miou)
        ax.errorbar(g.first("analysis")["macs"] / 1e9, y, yerr=err or None, color=_color(g),
                    marker=MARKERS[i % 10], ms=7, capsize=3, ls="", label=_label(g))  # fmt: skip
    sizes = sorted({size_text(g.first("analysis").get("input_size")) for g in points})
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    labels = (
        f"GMACs per image at {'/'.join(map(str, sizes))} px (log)",
        MIOU_AXIS,
        "accuracy vs cost",
    )
    return _finish(
        fig,
        ax,
        path,
        labels,
        grid=dict(which="both"),
        legend=dict(loc="center left", bbox_to_anchor=(1.01, 0.5)),
    )


def plot_miou_vs_os(groups: Sequence[DesignGroup], path: Path) -> Path | None:
    """mIoU against the inference output stride, one line per design and trained OS."""
    points = [g for g in groups if g.miou is not None and g.stride]
    if not points:
        return None
    lines: dict[tuple[str, int | None], list[DesignGroup]] = {}
    for g in points:
        lines.setdefault((g.group, g.output_stride), []).append(g)
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for i, ((name, trained), line) in enumerate(lines.items()):
        line.sort(key=lambda g: g.stride)
        ys, errs = zip(*(_pct(g.miou) for g in line), strict=True)
        ax.errorbar([g.stride for g in line], ys, yerr=errs, marker=MARKERS[i % 10], capsize=3,
                    color=_color(line[0]), ls="-" if len(line) > 1 else "",
                    label=f"{name}, trained at OS {trained} (n={line[0].n})")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks([8, 16, 32], ["8", "16", "32"])
    return _finish(
        fig, ax, path, ("output stride at inference", MIOU_AXIS, "mIoU vs output stride")
    )


def plot_trimap(groups: Sequence[DesignGroup], path: Path) -> Path | None:
    """Trimap curves (DeepLabv3+ paper fig. 5): mIoU of the pixels within w px of a boundary, the
    mean over seeds with a ± std band."""
    curves = [g for g in groups if (g.first("eval").get("trimap") or {}).get("widths")]
    if not curves:
        return None
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for i, g in enumerate(curves):
        widths = [int(w) for w in g.first("eval")["trimap"]["widths"]]
        stats = [g.trimap(w) for w in widths]
        keep = [(w, s) for w, s in zip(widths, stats, strict=True) if s is not None]
        xs = [w for w, _ in keep]
        ys, errs = zip(*(_pct(s) for _, s in keep), strict=True)
        dashed = "--" if g.output_stride != g.stride else "-"
        ax.plot(xs, ys, marker=MARKERS[i % 10], color=_color(g), ls=dashed, label=_label(g))
        if g.n > 1:
            low = [y - e for y, e in zip(ys, errs, strict=True)]
            high = [y + e for y, e in zip(ys, errs, strict=True)]
            ax.fill_between(xs, low, high, color=_color(g), alpha=0.12, lw=0)
    labels = (
        "trimap band width (px)",
        "mIoU within the band (%), mean ± std",
        "boundary accuracy (trimap)",
    )
    return _finish(fig, ax, path, labels)


def plot_cost(groups: Sequence[DesignGroup], path: Path) -> Path | None:
    """Bars: params (M), GMACs and CPU latency (ms, mean ± std over seeds) per design."""
    rows = [g for g in groups if g.first("analysis")]
    if not rows:
        return None
    fig = Figure(figsize=(12, 1.8 + 0.35 * len(rows)))
    axes = fig.subplots(1, 3, sharey=True)
    ys = range(len(rows))
    for ax, key, title, scale in (
        (axes[0], "params", "params (M)", 1e-6),
        (axes[1], "macs", "GMACs", 1e-9),
    ):
        ax.barh(ys, [(g.first("analysis").get(key) or 0) * scale for g in rows],
                color=[_color(g) for g in rows])  # fmt: skip
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="x")
    latency = [g.summary(lambda r: (r.analysis or {}).get("latency_ms")) for g in rows]
    axes[2].barh(ys, [s.mean if s else 0 for s in latency],
                 xerr=[(s.std or 0) if s else 0 for s in latency], capsize=3,
                 color=[_color(g) for g in rows])  # fmt: skip
    axes[2].set_title("CPU latency (ms), mean ± std")
    axes[2].grid(alpha=0.3, axis="x")
    axes[0].set_yticks(list(ys), [g.label for g in rows], fontsize=7)
    axes[0].invert_yaxis()
    sizes = sorted({size_text(g.first("analysis").get("input_size")) for g in rows})
    fig.suptitle(f"cost at {'/'.join(map(str, sizes))} px, batch 1")
    return _save(fig, path)


def plot_erf_side_by_side(groups: Sequence[DesignGroup], path: Path) -> Path | None:
    """The ERF heatmaps the analyses wrote (``erf.png``, and ``erf_init.png`` of a checkpoint's
    fresh twin) of each design's first seed, one row per design: trained | freshly initialised."""
    rows = []
    for g in groups:
        run = next((r for r in g.runs if r.dirs.get("analysis")), None)
        folder = run.dirs["analysis"] if run else None
        images = [folder / n for n in ("erf.png", "erf_init.png")] if folder else []
        images = [p for p in images if p.is_file()]
        if images:
            rows.append((g, run, images))
    if not rows:
        return None
    cols = max(len(images) for *_, images in rows)
    fig = Figure(figsize=(4.6 * cols, 2.6 * len(rows)))
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for ax_row, (g, run, images) in zip(axes, rows, strict=True):
        for j, ax in enumerate(ax_row):
            ax.axis("off")
            if j < len(images):
                ax.imshow(mpimg.imread(images[j]))
                seed = f", seed {run.seed}" if run.seed is not None else ""
                ax.set_title(f"{g.label}{seed}: {_erf_kind(run, images[j])}", fontsize=8)
    return _save(fig, path)


def _erf_kind(rec, image: Path) -> str:  # noqa: ANN001
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


def plot_all(groups: Sequence[DesignGroup], out_dir: Path) -> tuple[list[Path], list[str]]:
    """Every plot of ``PLOTS`` into ``out_dir``; returns (written paths, names of the plots skipped
    for lack of data)."""
    written, skipped = [], []
    for name, fn in PLOTS.items():
        result = fn(groups, Path(out_dir) / name)
        (written.append(result) if result else skipped.append(Path(name).stem))
    return written, skipped
