"""Every model x backbone x output stride composes from configs/train.yaml, builds, runs fwd + bwd."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from segkit.models import Segmentor, create_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MODELS = ["fcn", "deeplabv3", "deeplabv3plus"]
# Tiny widths keep the whole matrix in seconds on a CPU; the architecture is otherwise the YAML's.
TINY = {
    "mobilenetv2": ["backbone.width_mult=0.35"],
    "xception": ["backbone.middle_blocks=1"],
    "xception65": ["backbone.middle_blocks=1"],
    "timm": ["backbone.model_name=test_resnet"],
}
NUM_CLASSES = 5


def compose_train(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(
            "train", overrides=["data=synthetic", f"data.num_classes={NUM_CLASSES}", *overrides]
        )


def build(model: str, backbone: str, output_stride: int, *extra: str) -> Segmentor:
    cfg = compose_train(
        [
            f"model={model}",
            f"backbone={backbone}",
            f"model.output_stride={output_stride}",
            *TINY[backbone],
            *extra,
        ]
    )
    return instantiate(cfg.model)


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("backbone", list(TINY))
@pytest.mark.parametrize("model", MODELS)
def test_every_combination_composes_builds_and_trains(model, backbone, output_stride):
    torch.manual_seed(0)
    net = build(model, backbone, output_stride, "model.aux=true")
    assert isinstance(net, Segmentor)
    assert net.output_stride == output_stride  # model.output_stride drove the backbone
    if model != "fcn":
        assert net.head.context.rates == tuple(r * 16 // output_stride for r in (6, 12, 18))
    x = torch.randn(2, 3, 72, 64)  # not a multiple of 32
    outputs = net(x)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "out": (2, NUM_CLASSES, 72, 64),
        "aux": (2, NUM_CLASSES, 72, 64),
    }
    target = torch.randint(0, NUM_CLASSES, (2, 72, 64))
    ce = torch.nn.functional.cross_entropy
    loss = ce(outputs["out"], target) + 0.4 * ce(outputs["aux"], target)
    loss.backward()
    assert torch.isfinite(loss)
    no_grad = [n for n, p in net.named_parameters() if p.grad is None]
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert no_grad == frozen == unused_fcn_upsamplers(model, output_stride)
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def unused_fcn_upsamplers(model: str, output_stride: int) -> list[str]:
    """FCN-8s keeps its x2 upsamplers at every output stride (same state dict); a dilated backbone
    puts two fused scores at the same stride, so the upsampler between them is skipped (and frozen)."""
    if model != "fcn":
        return []
    skipped = {32: [], 16: [0], 8: [0, 1]}[output_stride]
    return [f"head.upsamples.{i}.weight" for i in skipped]


def test_model_configs_default_output_strides():
    for model, os in [("fcn", 32), ("deeplabv3", 16), ("deeplabv3plus", 16)]:
        cfg = compose_train([f"model={model}"])
        assert cfg.model.output_stride == os
        assert cfg.model.num_classes == NUM_CLASSES


@pytest.mark.parametrize(
    "switches",
    [
        ["model.separable=true", "model.context=pyramid_pooling", "model.aux=true"],
        ["model.context=none", "model.low_level_channels=16", "model.decoder_channels=64"],
    ],
)
def test_deeplabv3plus_switches_from_the_command_line(switches):
    net = build("deeplabv3plus", "mobilenetv2", 16, *switches)
    out = net(torch.randn(2, 3, 64, 64))
    assert out["out"].shape == (2, NUM_CLASSES, 64, 64)
    assert ("aux" in out) == ("model.aux=true" in switches)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_fcn_variant_key(variant):
    net = build("fcn", "mobilenetv2", 32, f"model.fcn_variant={variant}")
    assert net.head.variant == variant
    assert len(net.head.score_skips) == {"32s": 0, "16s": 1, "8s": 2}[variant]


def test_impossible_fcn_variant_from_the_config():
    with pytest.raises(
        Exception,
        match="fcn_variant=32s predicts at stride 32 but the backbone's output stride is 16",
    ):
        build("fcn", "mobilenetv2", 16, "model.fcn_variant=32s")


@pytest.mark.parametrize("backbone", ["mobilenetv2", "xception65"])
def test_real_backbone_output_stride_switch_equals_a_model_built_there(backbone):
    at16 = build("deeplabv3plus", backbone, 16).eval()
    at8 = build("deeplabv3plus", backbone, 8).eval()
    at8.load_state_dict(at16.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        at16.set_output_stride(8)
        torch.testing.assert_close(at16(x)["out"], at8(x)["out"])


def test_create_model_with_a_backbone_name():
    net = create_model("fcn", backbone="mobilenetv2", num_classes=3, output_stride=32)
    assert net.backbone.strides[-1] == 32 and net.head.variant == "8s"
    out = net.eval()(torch.randn(1, 3, 64, 64))["out"]
    assert out.shape == (1, 3, 64, 64)


def test_unknown_backbone_name_lists_choices():
    with pytest.raises(ValueError, match=r"unknown backbone 'resnet'.*mobilenetv2.*xception65"):
        create_model("deeplabv3plus", backbone="resnet")
