"""``inspect_data`` task: split sizes, class pixel frequencies, a mask-overlay grid, optional JSON."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from segkit.constants import IGNORE_INDEX, VOC_PALETTE  # noqa: E402
from segkit.data import SegDataModule, VOCSegmentation  # noqa: E402
from segkit.data.io import check_mask_values  # noqa: E402
from segkit.tasks._common import instantiate_user  # noqa: E402

log = logging.getLogger(__name__)


def class_pixel_counts(dataset: VOCSegmentation, max_images: int | None = None) -> np.ndarray:
    """Pixel count per label value (256,) over a split's raw masks (values checked per mask)."""
    counts = np.zeros(256, dtype=np.int64)
    n = len(dataset) if max_images is None else min(len(dataset), max_images)
    for i in range(n):
        mask = dataset.load_mask(i)
        check_mask_values(mask, dataset.num_classes, mask_path=dataset.mask_path(dataset.ids[i]))
        counts += np.bincount(mask.ravel(), minlength=256)
    return counts


def overlay_grid(dataset: VOCSegmentation, path: Path, samples: int) -> None:
    """Save a PNG grid of the first ``samples`` images with their masks blended on top."""
    n = min(samples, len(dataset))
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    palette = np.asarray(VOC_PALETTE, dtype=np.float32)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        image, mask = dataset.load(i)
        blend = np.where((mask > 0)[..., None], 0.45 * image + 0.55 * palette[mask], image)
        ax = axes.ravel()[i]
        ax.imshow(blend.astype(np.uint8))
        ax.set_title(dataset.ids[i], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _print_tables(splits: dict[str, int], names: tuple[str, ...], counts: np.ndarray) -> None:
    console = Console()
    table = Table(title="splits")
    table.add_column("split")
    table.add_column("images", justify="right")
    for split, n in splits.items():
        table.add_row(split, str(n))
    console.print(table)
    total = max(int(counts.sum()), 1)
    table = Table(title="class pixel frequencies (all splits)")
    for col in ("label", "class", "pixels", "share"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for k, name in enumerate(names):
        table.add_row(str(k), name, str(int(counts[k])), f"{100 * counts[k] / total:.2f}%")
    table.add_row(
        str(IGNORE_INDEX),
        "void",
        str(int(counts[IGNORE_INDEX])),
        f"{100 * counts[IGNORE_INDEX] / total:.2f}%",
    )
    console.print(table)


def inspect_data(cfg: DictConfig) -> dict[str, Any]:
    """Inspect the data of ``cfg.data``; writes ``grid.png`` (and ``cfg.inspect.json``) and returns
    ``{"splits": {name: count}, "class_pixels": {class name: count}}``."""
    dm: SegDataModule = instantiate_user(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    datasets = {dm.train_set.split: dm.train_set, dm.val_set.split: dm.val_set}
    splits = {name: len(ds) for name, ds in datasets.items()}
    counts = sum(class_pixel_counts(ds, cfg.inspect.max_images) for ds in datasets.values())
    _print_tables(splits, dm.class_names, counts)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overlay_grid(dm.train_set, out_dir / "grid.png", int(cfg.inspect.grid_samples))
    log.info("mask overlay grid written to %s", out_dir / "grid.png")
    summary = {
        "splits": splits,
        "class_pixels": {name: int(counts[k]) for k, name in enumerate(dm.class_names)},
    }
    if cfg.inspect.get("json"):
        json_path = Path(cfg.inspect.json)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
        log.info("summary written to %s", json_path)
    return summary
