"""`make demo`: train FCN-8s and DeepLabv3+ on the built-in synthetic data (experiment=quickstart, CPU),
then show them side by side:

- a table (val mIoU, pixel accuracy, output stride, parameters, train time, and the mIoU of an
  all-background predictor as the floor) laid out to read in an 80-column terminal and in a log;
- ``predictions.png``: a few validation images, their ground truth and both designs' predictions,
  with a legend of the class colours (its path is printed last);
- one line that says which design scored higher in this run, or, when a design has not learnt
  beyond the all-background floor, says so instead of ranking them.

Usage: python scripts/demo.py [extra Hydra overrides, e.g. trainer.max_steps=100]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from segkit.cli.configs import compose_config
from segkit.cli.jobs import exit_on_user_error, instantiate_user, task_log
from segkit.compare.stats import background_floor
from segkit.data import ClassInfo, SegSplit
from segkit.evaluation.report import label_grid
from segkit.tasks.checkpoints import load_segmentor
from segkit.tasks.train import train

DESIGNS = {"fcn": "FCN-8s", "deeplabv3plus": "DeepLabv3+"}
#: The picture's file name in the demo's folder (logs/demo/<time>/), and the images it shows.
PICTURE = "predictions.png"
PICTURE_IMAGES = 4
#: A design counts as having learnt something only above floor + this (mIoU points / 100): closer
#: to the floor, its mIoU is that of a near-trivial predictor and an order between designs is noise.
FLOOR_MARGIN = 0.05


def compose_design(model: str, out_root: Path, extra: list[str]):
    overrides = [
        "experiment=quickstart",
        f"model={model}",
        f"paths.output_dir={out_root / model}",
        "trainer.enable_model_summary=false",  # the demo's table has the parameters
        *extra,
    ]
    return compose_config("train", overrides)


def val_dataset(cfg) -> tuple[SegSplit, ClassInfo]:
    """The validation split the runs were scored on (no augmentation) and its classes."""
    dataset = instantiate_user(cfg.data.dataset, _convert_="all")
    dataset.prepare()
    return dataset.split("val"), dataset.classes


def floor_miou(dataset: SegSplit, num_classes: int) -> float | None:
    """mIoU of labelling every validation pixel background: the floor a design must beat."""
    counts = np.zeros(256, np.int64)
    for i in range(len(dataset)):
        counts += np.bincount(dataset.load(i)[1].reshape(-1), minlength=256)
    return background_floor(counts[:num_classes])


@torch.inference_mode()
def predictions(ckpt: str, images: list[np.ndarray]) -> list[np.ndarray]:
    """(H, W) uint8 label maps of the checkpoint's network for RGB uint8 images, one at a time."""
    model, _ = load_segmentor(ckpt)
    out = []
    for image in images:
        x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).contiguous()  # uint8
        out.append(model(x)["out"].argmax(1)[0].to(torch.uint8).numpy())
    return out


def picture(results: dict[str, dict], dataset: SegSplit, classes: ClassInfo, path: Path) -> Path:
    """predictions.png: per validation image, image | ground truth | each design's prediction."""
    shown = [dataset.load(i) for i in range(min(PICTURE_IMAGES, len(dataset)))]
    preds = {
        model: predictions(_last_ckpt(m), [image for image, _ in shown])
        for model, m in results.items()
    }
    rows = []
    for n, (image, mask) in enumerate(shown):
        row = [(dataset.ids[n], image, None), ("ground truth", image, mask)]
        row += [(DESIGNS.get(model, model), image, preds[model][n]) for model in results]
        rows.append(row)
    return label_grid(
        rows,
        classes,
        path,
        colour_maps=True,
        title="validation images: ground truth vs predictions",
    )


def _last_ckpt(metrics: dict[str, Any]) -> str:
    return metrics.get("last_ckpt") or str(
        Path(metrics["output_dir"]) / "checkpoints" / "last.ckpt"
    )


def _miou(m: dict[str, Any]) -> float:
    value = m.get("val/mIoU")
    return float("nan") if value is None else float(value)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def _load(value: float | None) -> str:
    """The 1-min load average when a training ended: on a shared machine its wall time measures
    the other jobs too (its CPU time hardly), so the table shows which figure to trust."""
    return "-" if value is None else f"{value:.1f}"


def table(results: dict[str, dict], floor: float | None) -> Table:
    """One column per design (and the floor), one row per measure: narrow whatever the names."""
    out = Table(title="FCN vs DeepLabv3+, synthetic data", title_justify="left")
    out.add_column("")
    for model in results:
        out.add_column(DESIGNS.get(model, model), justify="right")
    out.add_column("all-bg floor", justify="right", style="dim")
    ms = list(results.values())
    rows = [
        ("val mIoU", [f"{_miou(m):.3f}" for m in ms], "-" if floor is None else f"{floor:.3f}"),
        ("pixel acc", [f"{m.get('val/pixel_acc', float('nan')):.3f}" for m in ms], "-"),
        ("output stride", [str(m["output_stride"]) for m in ms], "-"),
        ("backbone", [str(m["backbone"]) for m in ms], "-"),
        ("params", [f"{m['params'] / 1e6:.2f} M" for m in ms], "-"),
        ("train steps", [str(m.get("global_step", "-")) for m in ms], "-"),
        ("train CPU", [_seconds(m.get("train_cpu_s")) for m in ms], "-"),
        ("train wall", [_seconds(m.get("train_time_s")) for m in ms], "-"),
        ("load at end", [_load(m.get("load_avg_1min")) for m in ms], "-"),
    ]
    for name, cells, floor_cell in rows:
        out.add_row(name, *cells, floor_cell)
    return out


def verdict(results: dict[str, dict], floor: float | None) -> str:
    """Which design scored higher in this run, or why no order is given."""
    scores = {DESIGNS.get(model, model): _miou(m) for model, m in results.items()}
    floor_text = "n/a" if floor is None else f"{floor:.3f}"
    stuck = [n for n, v in scores.items() if not v > (floor or 0.0) + FLOOR_MARGIN]
    if stuck:
        got = ", ".join(f"{n} {scores[n]:.3f}" for n in stuck)
        return (
            f"{' and '.join(stuck)} did not learn beyond the all-background floor (val mIoU "
            f"{got}; floor {floor_text}, and learning counts from {FLOOR_MARGIN:.2f} above it), so "
            "no ranking is given: train longer (a larger trainer.max_steps)."
        )
    (best, top), (other, low) = sorted(scores.items(), key=lambda kv: -kv[1])[:2]
    return (
        f"{best} scored {100 * (top - low):.1f} points of val mIoU above {other} in this run "
        f"(floor {floor_text}). One seed each measures no seed-to-seed spread: docs/comparison.md "
        "compares them over 3 seeds with confidence intervals."
    )


@exit_on_user_error
def main(extra: list[str]) -> None:
    out_root = Path.cwd() / "logs" / "demo" / time.strftime("%Y-%m-%d_%H-%M-%S")
    console = Console()
    configs = {model: compose_design(model, out_root, extra) for model in DESIGNS}
    steps = configs["fcn"].trainer.max_steps
    console.print(
        f"demo: {' then '.join(DESIGNS.values())}, {steps} steps each "
        "(experiment=quickstart: synthetic data, CPU)",
        highlight=False,
    )
    console.print(f"run folders: {out_root}", highlight=False, soft_wrap=True)
    results = {}
    for n, (model, cfg) in enumerate(configs.items(), 1):
        console.rule(f"training {DESIGNS[model]} ({n}/{len(configs)})", style="dim")
        with task_log(cfg.paths.output_dir, "train"):  # <design>/train.log, as a script run has
            results[model] = train(cfg)
    dataset, classes = val_dataset(configs["fcn"])
    floor = floor_miou(dataset, classes.num_classes)
    image = picture(results, dataset, classes, out_root / PICTURE)
    console.print(table(results, floor))
    console.print(verdict(results, floor), highlight=False)
    console.print(f"run folders: {out_root}", highlight=False, soft_wrap=True)
    console.print(f"picture: {image}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main(sys.argv[1:])
