"""Checkpoints record the input normalisation their network was trained with (no state_dict entry:
the Segmentor's buffers are non-persistent); those of before it get ImageNet's, which
``segkit.data.normalize`` gave every model."""

from __future__ import annotations

from segkit.backbones import create_backbone
from segkit.constants import IMAGENET_MEAN, IMAGENET_STD
from segkit.models import create_model
from segkit.training.checkpoint_file import apply_checkpoint_input_norm, checkpoint_input_norm
from segkit.training.module import SegModule


def _model():
    return create_model(
        "fcn", backbone=create_backbone("mobilenetv2", output_stride=32, width_mult=0.35),
        num_classes=3, output_stride=32,
    )  # fmt: skip


def test_saved_and_restored_with_the_checkpoint():
    model = _model()
    model.set_input_norm((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    ckpt: dict = {}
    SegModule(model, num_classes=3).on_save_checkpoint(ckpt)
    assert ckpt["segkit"]["input_norm"] == {"mean": [0.5] * 3, "std": [0.25] * 3}
    fresh = _model()
    apply_checkpoint_input_norm(fresh, ckpt)
    assert fresh.input_mean == (0.5,) * 3 and fresh.input_std == (0.25,) * 3


def test_a_checkpoint_of_before_means_imagenet():
    assert checkpoint_input_norm({"segkit": {"best_miou": 0.5}}) == (
        list(IMAGENET_MEAN),
        list(IMAGENET_STD),
    )
    model = _model()
    model.set_input_norm((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # e.g. a timm pretrained_cfg
    apply_checkpoint_input_norm(model, {"state_dict": {}})
    assert model.input_mean == IMAGENET_MEAN and model.input_std == IMAGENET_STD
