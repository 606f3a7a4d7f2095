"""create_backbone and the Hydra backbone group (composed, instantiated with an output stride)."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from segkit.backbones import BACKBONES, create_backbone

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_unknown_backbone_lists_choices() -> None:
    with pytest.raises(
        ValueError, match=r"unknown backbone 'resnet'; choose one of \['mobilenetv2'"
    ):
        create_backbone("resnet")


def test_invalid_output_stride() -> None:
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32, got 12"):
        create_backbone("mobilenetv2", output_stride=12)


def test_switches_reach_the_builder() -> None:
    model = create_backbone("mobilenetv2", output_stride=8, width_mult=0.5, linear_bottleneck=False)
    assert model.strides == [4, 8, 8, 8] and model.channels[0] == 16
    with pytest.raises(ValueError, match=r"unknown switch\(es\) \['depth'\].*'width_mult'"):
        create_backbone("mobilenetv2", depth=3)
    with pytest.raises(ValueError, match=r"backbone 'timm' needs \['model_name'\]"):
        create_backbone("timm")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_config_instantiates(name: str) -> None:
    overrides = [f"backbone={name}"]
    if name in ("xception", "xception65"):
        overrides.append("backbone.middle_blocks=1")
    if name == "timm":
        overrides.append("backbone.model_name=resnet18")
    if name == "mobilenetv2":
        overrides.append("backbone.multi_grid=[1,2,4]")
    with initialize_config_dir(str(CONFIGS / "backbone"), version_base="1.3"):
        cfg = compose(
            config_name=name, overrides=[o.replace("backbone.", "") for o in overrides[1:]]
        )
    assert "output_stride" not in cfg  # model.output_stride drives it
    model = instantiate(cfg)(output_stride=8)
    assert model.strides[-1] == 8
    feats = model(torch.randn(1, 3, 64, 64))
    feats[-1].mean().backward()
