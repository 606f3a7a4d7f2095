"""One model, one score: every image is scored exactly as if it were evaluated alone.

A split of images of a few different sizes (sizes repeat, so some batches hold several images),
a real tiny network (random weights, eval mode): ``evaluate`` gives the very same confusion
matrix at ``eval.batch_size`` 1, 8 and 20, and training-time validation logs the number
``evaluate`` gives for the checkpoint it wrote.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image

from helpers.evaluation import compose_config, write_checkpoint
from segkit.data.synthetic import SyntheticSpec, ensure_synthetic
from segkit.tasks.evaluate import IMAGE_CONFUSION_FILE, evaluate
from segkit.tasks.train import build_module

#: Synthetic 96x96 images; ``_crop_val`` cuts the 24 val ones to SIZES in turn.
MIXED = [
    "data=synthetic",
    "data.dataset.num_train=8",
    "data.dataset.num_val=24",
    "data.dataset.min_size=96",
    "data.dataset.max_size=96",
    "data.num_workers=0",
    "backbone.width_mult=0.35",
]
SPEC = SyntheticSpec(seed=0, num_train=8, num_val=24, min_size=96, max_size=96, num_classes=7)
#: 5 sizes, each 4-5 times: batches of equal sizes hold several images; mixed ones would be padded
#: by up to 32 px per side.
SIZES = [(96, 96), (64, 96), (96, 64), (64, 64), (80, 72)]
MODELS = {
    "fcn": ["model=fcn"],  # FCN-8s at OS 32: zero-padded convs only, no image pooling
    "deeplabv3plus": [
        "model.aspp_channels=16",
        "model.decoder_channels=16",
        "model.low_level_channels=8",
    ],
}


def _crop_val(data_root: Path) -> None:
    """The val images and masks of MIXED's data, cropped (top left) to SIZES in turn."""
    voc = ensure_synthetic(data_root, SPEC) / "VOCdevkit" / "VOC2012"
    ids = (voc / "ImageSets" / "Segmentation" / "val.txt").read_text().split()
    for i, image_id in enumerate(ids):
        h, w = SIZES[i % len(SIZES)]
        for path in (
            voc / "JPEGImages" / f"{image_id}.jpg",
            voc / "SegmentationClass" / f"{image_id}.png",
        ):
            with Image.open(path) as im:
                cropped = im.crop((0, 0, w, h))
                cropped.load()
            cropped.save(path, quality=95) if path.suffix == ".jpg" else cropped.save(path)


def _checkpoint(run: Path, data_root: Path, model: str) -> tuple[Path, DictConfig, torch.nn.Module]:
    """A checkpoint of ``model`` with random weights and BN statistics (its config stored)."""
    cfg = compose_config(
        "train",
        [f"paths.root_dir={run}", f"paths.output_dir={run}", f"data.root={data_root}", *MIXED,
         *MODELS[model]],
    )  # fmt: skip
    torch.manual_seed(0)
    net = instantiate(cfg.model)
    with torch.no_grad():  # visible BN statistics, so predictions vary over the image
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.running_mean.normal_(0.0, 0.2)
            elif isinstance(m, torch.nn.Conv2d) and not m.weight.any():
                m.weight.normal_(0.0, 0.05)  # FCN's zero-initialised score layers
    run.mkdir(parents=True, exist_ok=True)
    return write_checkpoint(run / "last.ckpt", cfg, net), cfg, net


def _evaluate(ckpt: Path, out: Path, *overrides: str) -> tuple[dict, np.ndarray]:
    cfg = compose_config(
        "evaluate",
        [f"ckpt_path={ckpt}", f"paths.root_dir={out}", f"paths.output_dir={out}",
         "eval.device=cpu", "eval.trimap_widths=[2]", "eval.num_overlays=0", *overrides],
    )  # fmt: skip
    metrics = evaluate(cfg)
    with np.load(out / IMAGE_CONFUSION_FILE) as saved:
        return metrics, saved["confusion"]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_metrics_do_not_depend_on_the_batch_size(model, tmp_path):
    _crop_val(tmp_path / "data")
    ckpt, _, _ = _checkpoint(tmp_path / "train", tmp_path / "data", model)
    one, one_images = _evaluate(ckpt, tmp_path / "b1", "eval.batch_size=1")
    sizes = {tuple(np.asarray(c).shape) for c in one_images}
    assert one["num_images"] == 24 and sizes == {(7, 7)}
    for batch_size in (8, 20):
        other, images = _evaluate(
            ckpt, tmp_path / f"b{batch_size}", f"eval.batch_size={batch_size}"
        )
        assert other["confusion_matrix"] == one["confusion_matrix"], batch_size
        assert np.array_equal(images, one_images), batch_size  # each image as if alone
        assert other["mIoU"] == one["mIoU"] and other["trimap"] == one["trimap"]


def test_training_validation_logs_what_evaluate_gives(tmp_path):
    """The val loop of training (SegDataModule's val loader, SegModule.validation_step, at the
    quickstart's val batch of 20) and evaluate at its defaults score the same weights alike."""
    data_root = tmp_path / "data"
    _crop_val(data_root)
    ckpt, cfg, net = _checkpoint(tmp_path / "train", data_root, "deeplabv3plus")
    module = build_module(cfg)
    module.model.load_state_dict(net.state_dict())
    datamodule = instantiate(cfg.data, val_batch_size=20, _convert_="all")
    # the run's own numerics (trainer=cpu: bf16-mixed where the CPU has it, channels_last)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, precision=cfg.trainer.precision)  # fmt: skip
    (logged,) = trainer.validate(module, datamodule=datamodule)
    metrics, _ = _evaluate(ckpt, tmp_path / "eval")  # default eval settings
    assert metrics["num_images"] == 24 and metrics["settings"]["batch_size"] == 8
    assert metrics["mIoU"] == pytest.approx(logged["val/mIoU"], abs=1e-7)
    for name, iou in metrics["per_class_iou"].items():
        value = logged[f"val/IoU/{name}"]
        assert (
            iou == pytest.approx(value, abs=1e-7, nan_ok=True)
            if iou is not None
            else value != value
        )
