"""Segmentor and builders on the fake backbone: output dict, any input size, OS switch, errors."""

from __future__ import annotations

import pytest
import torch

from helpers.fake_backbone import FakeBackbone
from segkit.heads import FCNHead
from segkit.models import Segmentor, create_model, deeplabv3, deeplabv3plus, fcn

SMALL = {"aspp_channels": 16}
SMALL_PLUS = {"aspp_channels": 16, "decoder_channels": 16, "low_level_channels": 8}


def test_fake_backbone_honours_the_contract():
    bb = FakeBackbone(output_stride=8)
    assert bb.strides == [4, 8, 8, 8]
    feats = bb(torch.randn(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 8, 8]
    bb.set_output_stride(32)
    assert [f.shape[-1] for f in bb(torch.randn(1, 3, 64, 64))] == [16, 8, 4, 2]


@pytest.mark.parametrize("size", [(64, 64), (70, 90), (33, 47)])
@pytest.mark.parametrize(
    "build",
    [
        lambda: fcn(backbone=FakeBackbone, num_classes=5, aux=True),
        lambda: deeplabv3(backbone=FakeBackbone, num_classes=5, aux=True, **SMALL),
        lambda: deeplabv3plus(backbone=FakeBackbone, num_classes=5, aux=True, **SMALL_PLUS),
    ],
    ids=["fcn", "deeplabv3", "deeplabv3plus"],
)
def test_forward_backward_at_any_input_size(build, size):
    model = build()
    out = model(torch.randn(2, 3, *size))
    assert set(out) == {"out", "aux"}
    assert out["out"].shape == out["aux"].shape == (2, 5, *size)
    (out["out"].mean() + 0.4 * out["aux"].mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_no_aux_key_without_aux_head():
    model = deeplabv3plus(backbone=FakeBackbone, num_classes=3, **SMALL_PLUS)
    assert set(model(torch.randn(1, 3, 64, 64))) == {"out"}


@pytest.mark.parametrize(
    ("build", "extra"),
    [(deeplabv3plus, SMALL_PLUS), (deeplabv3, SMALL)],
    ids=["deeplabv3plus", "deeplabv3"],
)
def test_output_stride_switch_equals_a_model_built_there(build, extra):
    torch.manual_seed(0)
    at16 = build(backbone=FakeBackbone, num_classes=4, output_stride=16, **extra).eval()
    at8 = build(backbone=FakeBackbone, num_classes=4, output_stride=8, **extra).eval()
    at8.load_state_dict(at16.state_dict())
    x = torch.randn(1, 3, 64, 64)
    before = at16(x)["out"]
    at16.set_output_stride(8)
    assert at16.output_stride == 8
    assert at16.head.context.rates == (12, 24, 36)
    torch.testing.assert_close(at16(x)["out"], at8(x)["out"])
    assert not torch.allclose(before, at8(x)["out"])


def test_fcn_output_stride_switch_keeps_weights():
    model = fcn(backbone=FakeBackbone, num_classes=4, output_stride=32, aux=True).eval()
    ref = fcn(backbone=FakeBackbone, num_classes=4, output_stride=16, aux=True).eval()
    ref.load_state_dict(model.state_dict())
    model.set_output_stride(16)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model(x)["out"], ref(x)["out"])


def test_failed_output_stride_switch_changes_nothing():
    model = fcn(backbone=FakeBackbone, num_classes=4, output_stride=32, fcn_variant="32s")
    with pytest.raises(ValueError, match="fcn_variant=32s predicts at stride 32"):
        model.set_output_stride(16)
    assert model.output_stride == 32
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32, got 4"):
        model.set_output_stride(4)


def test_create_model_by_name():
    model = create_model("deeplabv3plus", backbone=FakeBackbone, num_classes=3, **SMALL_PLUS)
    assert isinstance(model, Segmentor) and model.output_stride == 16
    model = create_model("fcn", backbone=FakeBackbone, output_stride=32, fcn_variant="16s")
    assert isinstance(model.head, FCNHead) and model.head.variant == "16s"
    assert model.head.score.out_channels == 21


def test_a_built_backbone_is_redilated():
    bb = FakeBackbone(output_stride=32)
    model = deeplabv3(backbone=bb, num_classes=3, output_stride=8, **SMALL)
    assert model.backbone is bb and bb.strides == [4, 8, 8, 8]


def test_unknown_model_lists_choices():
    with pytest.raises(
        ValueError, match=r"unknown model 'pspnet'.*\['deeplabv3', 'deeplabv3plus', 'fcn'\]"
    ):
        create_model("pspnet", backbone=FakeBackbone)


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['fcn_variant'\].*'context'"):
        create_model("deeplabv3plus", backbone=FakeBackbone, fcn_variant="8s")


@pytest.mark.parametrize("build", [fcn, deeplabv3, deeplabv3plus])
def test_bad_output_stride_names_choices(build):
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32, got 12"):
        build(backbone=FakeBackbone, num_classes=3, output_stride=12)


def test_impossible_fcn_variant_from_the_builder():
    with pytest.raises(
        ValueError,
        match="fcn_variant=32s predicts at stride 32 but the backbone's output stride is 8; use fcn_variant=8s or output_stride=32",
    ):
        fcn(backbone=FakeBackbone, num_classes=3, output_stride=8, fcn_variant="32s")


def test_backbone_builder_must_return_a_backbone():
    with pytest.raises(ValueError, match="not a segkit Backbone"):
        fcn(backbone=lambda output_stride: torch.nn.Identity(), num_classes=3)
    with pytest.raises(ValueError, match="backbone must be a backbone name"):
        fcn(backbone=3, num_classes=3)


@pytest.mark.parametrize("context", ["aspp", "pyramid_pooling"])
def test_trains_at_batch_size_one(context):
    """Pooled context branches carry no BN, so a single image trains (BN over 1 value would raise)."""
    model = deeplabv3plus(
        backbone=FakeBackbone, num_classes=3, context=context, aux=True, **SMALL_PLUS
    ).train()
    out = model(torch.randn(1, 3, 64, 64))
    (out["out"].mean() + out["aux"].mean()).backward()
    assert out["out"].shape == (1, 3, 64, 64)
