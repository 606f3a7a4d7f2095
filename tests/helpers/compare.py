"""Fake run folders for the compare tests, written with the real writers where that is cheap:
the composed train config (``save_config``), the evaluation document (``metrics_dict`` of a real
``EvalResult``), the analysis JSON and ERF heatmap (``analyze_model`` on a real model). Only the
training metrics.json is written by hand, with the keys ``segkit.tasks.train._summary`` writes."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from helpers.compare_loader import ROOT, load_script
from segkit.analysis import analyze_model, save_heatmap
from segkit.cli.configs import compose_config
from segkit.cli.jobs import save_config, save_json
from segkit.evaluation.evaluator import EvalResult
from segkit.evaluation.report import metrics_dict
from segkit.models import create_model
from segkit.runs import write_json
from segkit.tasks.evaluate import write_image_confusion

CLASSES = ("background", "thing")
__all__ = ["ROOT", "TINY", "load_script"]  # ROOT, load_script re-exported: tests import them here

#: Overrides that shrink the quickstart / comparison recipe to a 2-step run of a narrow network on
#: a few 64 px synthetic images (the script tests that train for real).
TINY = [
    "data.dataset.num_train=16",
    "data.dataset.num_val=4",
    "data.crop_size=64",
    "data.batch_size=8",
    "data.val_batch_size=4",
    "backbone.width_mult=0.35",
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "module.scheduler.warmup_steps=0",
]


def cm(hit: int, miss: int) -> torch.Tensor:
    """2-class confusion matrix whose per-class IoU (and mIoU) is hit / (hit + 2 miss)."""
    return torch.tensor([[hit, miss], [miss, hit]], dtype=torch.int64)


def write_train_run(run: Path, model: str, output_stride: int, *, best: float, extra=()) -> Path:
    """A finished training run folder; returns its best checkpoint path (an empty file)."""
    cfg = compose_config(
        "train",
        [
            "experiment=quickstart",
            f"model={model}",
            f"model.output_stride={output_stride}",
            f"paths.root_dir={run.parent}",
            f"paths.output_dir={run}",
            *extra,
        ],
    )
    save_config(cfg, run)
    ckpt = run / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    metrics = {
        "val/mIoU": best - 0.01,
        "val/mIoU_best": best,
        "val/pixel_acc": 0.9,
        "global_step": 400,
        "train_time_s": 123.4,
        "params": 1000,
        "output_stride": output_stride,
        "model": model,
        "backbone": "mobilenetv2",
        "best_ckpt": str(ckpt),
        "last_ckpt": str(run / "checkpoints" / "last.ckpt"),
        "output_dir": str(run),
    }
    save_json(metrics, run / "metrics.json")
    return ckpt


def write_eval_run(
    run: Path,
    ckpt: Path,
    model: str,
    *,
    trained_os: int,
    output_stride: int,
    hit: int,
    miss: int,
    per_image: torch.Tensor | None = None,
) -> dict:
    """An evaluation folder: mIoU = hit / (hit + 2 miss); trimap mIoU 1/3 at 1 px, 1/2 at 4 px.

    ``per_image``: (N, 2, 2) per-image matrices instead (their sum is the confusion matrix; the
    trimap bands are the same matrices at 1 px and 4 px), also written as per_image_confusion.npz
    by the evaluate task's own writer."""
    if per_image is None:
        result = EvalResult(
            confusion=cm(hit, miss),
            trimap={1: cm(1, 1), 4: cm(2, 1)},
            image_ids=["val_0"],
            image_miou=[0.5],
            num_images=1,
        )
    else:
        n = per_image.shape[0]
        result = EvalResult(
            confusion=per_image.sum(0),
            trimap={1: per_image.sum(0), 4: per_image.sum(0)},
            image_ids=[f"val_{i}" for i in range(n)],
            image_miou=[0.5] * n,
            num_images=n,
            image_confusion=per_image,
            image_trimap=torch.stack([per_image, per_image], dim=1),
        )
        write_image_confusion(result, run / "per_image_confusion.npz")
    settings = {
        "ckpt_path": str(ckpt),
        "model": model,
        "backbone": "mobilenetv2",
        "trained_output_stride": trained_os,
        "output_stride": output_stride,
        "trimap_widths": [1, 4],
    }
    metrics = metrics_dict(result, CLASSES, settings)
    write_json(metrics, run / "metrics.json")
    return metrics


@functools.cache
def _analysis(model: str, output_stride: int):
    torch.manual_seed(0)
    net = create_model(model, num_classes=2, output_stride=output_stride)
    return analyze_model(
        net, input_size=64, latency_runs=1, erf_input_size=33, erf_samples=1, erf_calibrate_bn=True
    )


def write_analysis_run(run: Path, model: str, output_stride: int, *, ckpt: Path | None) -> dict:
    """An analysis folder as the analyze task writes it (analysis.json + erf.png; the JSON of a
    checkpoint analysis names ``ckpt_path``, which is all compare reads of it)."""
    analysis = _analysis(model, output_stride)
    doc = {
        "model": model,
        "backbone": "mobilenetv2",
        "ckpt_path": None if ckpt is None else str(ckpt),
        **analysis.to_json(),
    }
    save_json(doc, run / "analysis.json")
    save_heatmap(analysis.erf, run / "erf.png", title=f"{model}: erf")
    if ckpt is None:  # a design-only analysis: its config says which model
        cfg = compose_config(
            "analyze",
            [
                f"model={model}",
                f"model.output_stride={output_stride}",
                f"paths.root_dir={run.parent}",
                f"paths.output_dir={run}",
            ],
        )
        save_config(cfg, run)
    return doc


def comparison_tree(root: Path) -> dict[str, Path]:
    """FCN-8s (OS 32) and DeepLabv3+ (OS 16) trained, evaluated and analysed like
    scripts/run_comparison.py lays them out, plus DeepLabv3+ evaluated at OS 8 in a folder
    elsewhere (joined by its checkpoint)."""
    fcn = write_train_run(root / "fcn", "fcn", 32, best=0.40)
    dl = write_train_run(root / "dl", "deeplabv3plus", 16, best=0.55)
    write_eval_run(
        root / "fcn" / "eval", fcn, "fcn", trained_os=32, output_stride=32, hit=4, miss=2
    )
    write_eval_run(
        root / "dl" / "eval", dl, "deeplabv3plus", trained_os=16, output_stride=16, hit=6, miss=2
    )
    write_analysis_run(root / "fcn" / "analysis", "fcn", 32, ckpt=fcn)
    write_analysis_run(root / "dl" / "analysis", "deeplabv3plus", 16, ckpt=dl)
    elsewhere = root.parent / f"{root.name}_evals" / "os8"
    write_eval_run(elsewhere, dl, "deeplabv3plus", trained_os=16, output_stride=8, hit=7, miss=2)
    return {"fcn": fcn.parent.parent, "dl": dl.parent.parent, "os8": elsewhere}
