"""``inspect_data`` task: check every sample of the train and val splits and list every defect, print
split sizes and class pixel frequencies, write a mask-overlay grid (and optionally JSON).

This is the tool to run before a long GPU job: it decodes every image and mask of both splits
(``segkit.data.check``, threads in parallel, with a progress bar), so a truncated JPEG or a mask of the
wrong size anywhere in a split is reported, with all the others, instead of failing training later.
It exits non-zero when it found a defect (after writing its outputs).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from segkit.cli.jobs import instantiate_user, save_config
from segkit.constants import IGNORE_INDEX
from segkit.data import CheckReport, ClassInfo, SegDataset, SegSplit, check_datasets
from segkit.evaluation.report import label_grid
from segkit.progress import progress

log = logging.getLogger(__name__)

DEFECTS_FILE = "defects.txt"


def overlay_grid(
    dataset: SegSplit,
    path: Path,
    samples: int,
    classes: ClassInfo,
    skip: set[str] | None = None,
) -> Path:
    """Save a PNG grid of ``samples`` images spread evenly over the split (ids in ``skip`` left
    out; the first and the last included) with their masks blended on top in the dataset's colours
    (void borders included) and a legend of the classes shown. Evenly spaced, not the first ones:
    consecutive frames of a video split (CamVid, Cityscapes sequences) are near-identical."""
    ids = [i for i, image_id in enumerate(dataset.ids) if image_id not in (skip or set())]
    shown = spread(ids, samples)
    cols = max(1, min(4, len(shown)))
    cells = [(dataset.ids[i], *dataset.load(i)) for i in shown]
    rows = [cells[r : r + cols] for r in range(0, len(cells), cols)]
    return label_grid(rows, classes, path, void=True)


def spread(items: list[int], count: int) -> list[int]:
    """``count`` of ``items`` evenly spaced from the first to the last (all of them when fewer)."""
    if count >= len(items):
        return list(items)
    if count <= 1:
        return list(items[:count])
    step = (len(items) - 1) / (count - 1)
    return [items[round(k * step)] for k in range(count)]


def json_output(name: str, run_dir: Path) -> Path:
    """Where ``inspect.json=<name>`` writes: a relative name inside the run folder, an absolute
    path as given."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else run_dir / path


def _workers(value: int | None) -> int:
    if value is None:
        return min(16, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 4)
    if int(value) < 1:
        raise ValueError(f"inspect.workers must be >= 1 (or null for one per core), got {value}")
    return int(value)


def run_check(
    datasets: list[SegSplit], *, level: str, workers: int, console: Console
) -> CheckReport:
    """``check_datasets`` over ``datasets`` with class pixel counts and a progress bar."""
    total = sum(map(len, datasets))
    with progress(f"checking ({level}, {workers} threads)", total, console=console) as advance:
        return check_datasets(
            datasets,
            level=level,  # type: ignore[arg-type]
            workers=workers,
            count_labels=True,
            progress=advance,
        )


def _print_tables(report: CheckReport, names: tuple[str, ...], console: Console) -> None:
    table = Table(title="splits")
    for col in ("split", "images", "defects"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, count in report.defects_by_split().items():
        table.add_row(split, str(report.samples[split]), str(count))
    console.print(table)
    counts = report.label_pixels if report.label_pixels is not None else np.zeros(256, np.int64)
    total = max(int(counts.sum()), 1)
    table = Table(title="class pixel frequencies (all splits)")
    for col in ("label", "class", "pixels", "share"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for k, name in [*enumerate(names), (IGNORE_INDEX, "void")]:
        table.add_row(str(k), name, str(int(counts[k])), f"{100 * counts[k] / total:.2f}%")
    console.print(table)


def _print_defects(report: CheckReport, shown: int | None, path: Path, console: Console) -> None:
    if not report.defects:
        console.print(f"data check: {report.summary()}")
        return
    console.print(f"[bold red]data check:[/] {report.summary()}:")
    for defect in report.defects[:shown]:
        console.print(f"  {defect}", markup=False, highlight=False)
    if shown is not None and len(report.defects) > shown:
        console.print(f"  ... and {len(report.defects) - shown} more: all listed in {path}")


def inspect_data(cfg: DictConfig) -> dict[str, Any]:
    """Check and summarise the data of ``cfg.data``; writes ``grid.png``, ``defects.txt`` (and
    ``cfg.inspect.json``) to the run folder and returns ``{"dataset": name, "classes": {names,
    palette, void, background}, "splits": {name: count}, "class_pixels": {class name: count},
    "defects": [...], "seconds": s}``. Raises a ValueError (exit 1 from the
    script) when a defect was found, after writing all of that."""
    console = Console(stderr=True)
    dataset: SegDataset = instantiate_user(cfg.data.dataset, _convert_="all")
    dataset.prepare()
    datasets = list(dataset.train_val(lenient=True).values())
    report = run_check(
        datasets,
        level=str(cfg.inspect.get("level", "full")),
        workers=_workers(cfg.inspect.get("workers")),
        console=console,
    )
    out_dir = Path(cfg.paths.output_dir)
    save_config(cfg, out_dir)
    defects_path = out_dir / DEFECTS_FILE
    defects_path.write_text("".join(f"{d}\n" for d in report.defects))
    _print_tables(report, dataset.classes.names, Console())
    show = cfg.inspect.get("show")
    _print_defects(report, None if show is None else int(show), defects_path, Console())
    bad_ids = {d.image_id for d in report.defects if d.split == datasets[0].split}
    grid = overlay_grid(
        datasets[0], out_dir / "grid.png", int(cfg.inspect.grid_samples), dataset.classes, bad_ids
    )
    console_out = Console()
    console_out.print(f"mask overlay grid: {grid}", highlight=False, soft_wrap=True)
    counts = report.label_pixels
    summary = {
        "dataset": dataset.name,
        "classes": dataset.classes.to_dict(),
        "splits": dict(report.samples),
        "class_pixels": {name: int(counts[k]) for k, name in enumerate(dataset.classes.names)},
        "void_pixels": int(counts[IGNORE_INDEX]),
        "level": report.level,
        "seconds": round(report.seconds, 3),
        "defect_count": len(report.defects),
        "defects": [
            {"split": d.split, "id": d.image_id, "message": d.message} for d in report.defects
        ],
    }
    if cfg.inspect.get("json"):
        json_path = json_output(str(cfg.inspect.json), out_dir)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
        console_out.print(f"summary: {json_path}", highlight=False, soft_wrap=True)
    if report.defects:
        first = report.defects[0]
        raise ValueError(
            f"{report.count()} in {report.total:,} samples, all listed in {defects_path}; "
            f"the first: {first}"
        )
    return summary
