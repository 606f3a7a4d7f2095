"""`make demo`: train FCN-8s and DeepLabv3+ on the built-in synthetic data (experiment=quickstart, CPU)
and print them side by side: val mIoU, output stride, parameters, train time, plus the mIoU of an
all-background predictor as the floor.

Usage: python scripts/demo.py [extra Hydra overrides, e.g. trainer.max_steps=100]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from segkit.evaluation.metrics import confusion_matrix, scores_from_confusion
from segkit.tasks._common import exit_on_user_error, instantiate_user
from segkit.tasks.configs import compose_config
from segkit.tasks.train import train

DESIGNS = ("fcn", "deeplabv3plus")


def compose_design(model: str, out_root: Path, extra: list[str]):
    overrides = [
        "experiment=quickstart",
        f"model={model}",
        f"paths.output_dir={out_root / model}",
        *extra,
    ]
    return compose_config("train", overrides)


def all_background_miou(cfg) -> float:
    """mIoU of the trivial predictor that labels every val pixel background: the floor to beat."""
    datamodule = instantiate_user(cfg.data, _convert_="all")
    datamodule.setup("validate")
    k = int(cfg.data.num_classes)
    cm = torch.zeros(k, k, dtype=torch.int64)
    for batch in datamodule.val_dataloader():
        cm += confusion_matrix(torch.zeros_like(batch["mask"]), batch["mask"], k)
    return float(scores_from_confusion(cm)["mIoU"])


def table(results: dict[str, dict], floor: float) -> Table:
    out = Table(title="FCN vs DeepLabv3+ on synthetic data (experiment=quickstart)")
    for col in (
        "design",
        "backbone",
        "output stride",
        "params",
        "val mIoU",
        "pixel acc",
        "train time",
    ):
        out.add_column(col, justify="left" if col in ("design", "backbone") else "right")
    names = {"fcn": "FCN-8s", "deeplabv3plus": "DeepLabv3+"}
    for model, m in results.items():
        out.add_row(
            names.get(model, model),
            m["backbone"],
            str(m["output_stride"]),
            f"{m['params'] / 1e6:.2f} M",
            f"{m.get('val/mIoU', float('nan')):.3f}",
            f"{m.get('val/pixel_acc', float('nan')):.3f}",
            f"{m['train_time_s']:.0f} s",
        )
    out.add_row("all-background", "-", "-", "-", f"{floor:.3f}", "-", "-", style="dim")
    return out


@exit_on_user_error
def main(extra: list[str]) -> None:
    out_root = Path.cwd() / "logs" / "demo" / time.strftime("%Y-%m-%d_%H-%M-%S")
    configs = {model: compose_design(model, out_root, extra) for model in DESIGNS}
    results = {model: train(cfg) for model, cfg in configs.items()}
    floor = all_background_miou(configs[DESIGNS[0]])
    console = Console()
    console.print(table(results, floor))
    console.print(f"run folders: {out_root}")


if __name__ == "__main__":
    main(sys.argv[1:])
