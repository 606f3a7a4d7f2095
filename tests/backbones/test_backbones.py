"""Backbones: feature contract at every output stride, in-place re-dilation, switches."""

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from helpers.backbones import randomize_norms
from segkit.backbones import Backbone, mobilenetv2, xception, xception65
from segkit.backbones.mobilenetv2 import InvertedResidual

# Tiny variants keep the suite fast; the structure around the middle flow is unchanged.
SMALL: dict[str, Callable[..., Backbone]] = {
    "mobilenetv2": lambda **kw: mobilenetv2(width_mult=0.35, **kw),
    "xception": lambda **kw: xception(middle_blocks=1, **kw),
    "xception65": lambda **kw: xception65(middle_blocks=1, **kw),
}
NOMINAL = [4, 8, 16, 32]


def build(name: str, **kw: object) -> Backbone:
    return randomize_norms(SMALL[name](**kw)).eval()


def valid_stem_size(n: int, stride: int) -> int:
    """Chollet's stem: 3x3/2 and 3x3 'valid' convs, then 'same' stride-2 pools."""
    n = (n - 3) // 2 + 1 - 2
    for _ in range(int(math.log2(stride)) - 1):
        n = (n - 1) // 2 + 1
    return n


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_feature_contract(name: str, output_stride: int) -> None:
    model = build(name, output_stride=output_stride)
    assert model.strides == [min(s, output_stride) for s in NOMINAL]
    assert model.nominal_strides == NOMINAL  # FeatureInfo.nominal: the planner's, at every OS
    modules = dict(model.named_modules())  # xception65 taps inside a block: "blocks.1.tap"
    assert all(f.module.removesuffix(".tap") in modules for f in model.feature_info)
    assert model.output_stride == output_stride
    h, w = 70, 58  # not multiples of 32
    with torch.no_grad():
        feats = model(torch.randn(1, 3, h, w))
    assert [f.shape[1] for f in feats] == model.channels
    for f, s in zip(feats, model.strides, strict=True):
        if name == "xception":
            assert f.shape[-2:] == (valid_stem_size(h, s), valid_stem_size(w, s))
        else:
            assert f.shape[-2:] == (math.ceil(h / s), math.ceil(w / s))


@pytest.mark.parametrize("name", list(SMALL))
def test_set_output_stride_in_place(name: str, image: torch.Tensor) -> None:
    model = build(name, output_stride=16)
    ref8 = SMALL[name](output_stride=8).eval()
    ref8.load_state_dict(model.state_dict())
    params = [p.data_ptr() for p in model.parameters()]
    with torch.no_grad():
        at16 = model(image)[-1]
        model.set_output_stride(8)
        at8 = model(image)[-1]
        assert model.strides == [4, 8, 8, 8]
        torch.testing.assert_close(at8, ref8(image)[-1])
        model.set_output_stride(16)
        torch.testing.assert_close(model(image)[-1], at16)
    assert at8.shape[-1] > at16.shape[-1]
    assert [p.data_ptr() for p in model.parameters()] == params  # same tensors, untouched


@pytest.mark.parametrize(
    ("name", "multi_grid"),
    [
        ("mobilenetv2", None),
        ("mobilenetv2", (1, 2, 4)),
        ("xception", None),
        ("xception65", (1, 2, 4)),
    ],
)
def test_dilated_features_subsampled_equal_the_os32_features(name: str, multi_grid) -> None:
    """The stride -> dilation rule is exact: every feature of the OS-16 (OS-8) model, taken at every
    2nd (4th) pixel, equals the OS-32 model's. It holds only if the block whose stride is dropped
    keeps the previous rate and every later conv/pool gets the multiplied one."""
    reference = build(name, output_stride=32, multi_grid=multi_grid)
    x = torch.randn(1, 3, 96, 80, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        at32 = reference(x)
        for output_stride in (16, 8):
            model = SMALL[name](output_stride=output_stride, multi_grid=multi_grid).eval()
            model.load_state_dict(reference.state_dict())
            for f32, f, s in zip(at32, model(x), reference.strides, strict=True):
                step = s // min(s, output_stride)
                torch.testing.assert_close(f[..., ::step, ::step], f32, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(SMALL))
def test_invalid_output_stride(name: str) -> None:
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32, got 4"):
        SMALL[name](output_stride=4)
    model = SMALL[name](output_stride=16)
    with pytest.raises(ValueError, match="8, 16 or 32"):
        model.set_output_stride(64)


@pytest.mark.parametrize("name", list(SMALL))
def test_atrous_impls_give_the_same_backbone_output(name: str, image: torch.Tensor) -> None:
    a = build(name, output_stride=8, atrous_impl="dilation")
    b = SMALL[name](output_stride=8, atrous_impl="space_to_batch").eval()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for fa, fb in zip(a(image), b(image), strict=True):
            torch.testing.assert_close(fa, fb, atol=1e-4, rtol=1e-4)


def test_mobilenetv2_linear_bottleneck_switch() -> None:
    linear = mobilenetv2(width_mult=0.35, linear_bottleneck=True)
    relu = mobilenetv2(width_mult=0.35, linear_bottleneck=False)
    blocks = [m for m in relu.modules() if isinstance(m, InvertedResidual)]
    assert len(blocks) == 17
    assert all(isinstance(b.conv[-1], nn.ReLU6) for b in blocks)
    assert not any(isinstance(m.conv[-1], nn.ReLU6) for m in linear.features[1:-1])
    # Same parameters: the switch only adds the non-linearity.
    relu.load_state_dict(linear.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        stem = linear.features[0](x)
        # features.1 has no residual: its output is the projection itself.
        assert linear.features[1](stem).min() < 0
        assert relu.features[1](stem).min() >= 0


def test_mobilenetv2_width_mult_channels() -> None:
    assert mobilenetv2(width_mult=1.0, final_conv=True).channels == [24, 32, 96, 1280]
    assert mobilenetv2(width_mult=0.5, final_conv=True).channels == [16, 16, 48, 1280]
    assert mobilenetv2(width_mult=1.4, final_conv=True).channels == [32, 48, 136, 1792]
    assert mobilenetv2(width_mult=1.0).channels == [24, 32, 96, 320]  # default: no final conv
    assert mobilenetv2(width_mult=1.0, output_stride=8).strides == [4, 8, 8, 8]
    with pytest.raises(ValueError, match="width_mult"):
        mobilenetv2(width_mult=0)


@pytest.mark.parametrize(("builder", "kind"), [(xception, "elu"), (xception65, "relu")])
def test_act_between_reaches_every_separable_conv(builder: Callable, kind: str) -> None:
    model = builder(middle_blocks=1, act_between=kind)
    acts = {type(m.act_dw) for m in model.modules() if hasattr(m, "act_dw")}
    assert acts == {nn.ELU if kind == "elu" else nn.ReLU}
    with pytest.raises(ValueError, match="act_between"):
        builder(middle_blocks=1, act_between="tanh")


def test_xception65_reference_layout_has_bn_after_every_depthwise() -> None:
    model = xception65(middle_blocks=1)
    seps = [m for m in model.modules() if hasattr(m, "norm_dw")]
    assert len(seps) == 3 * len(model.blocks)
    assert all(isinstance(s.norm_dw, nn.BatchNorm2d) for s in seps)
    # Pre-activation blocks: no ReLU inside (act_between="none"); the last block: ReLU after both BNs.
    assert all(isinstance(s.act_dw, nn.Identity) for b in model.blocks[:-1] for s in b.convs)
    assert all(isinstance(s.act_dw, nn.ReLU) for s in model.blocks[-1].convs)


@pytest.mark.parametrize(("middle", "n_blocks"), [(8, 13), (16, 21), (32, 37)])
def test_xception65_middle_blocks(middle: int, n_blocks: int) -> None:
    assert len(xception65(middle_blocks=middle).blocks) == n_blocks
    with pytest.raises(ValueError, match="middle_blocks"):
        xception65(middle_blocks=0)


def test_multi_grid_rates_on_last_stage() -> None:
    x65 = xception65(middle_blocks=1, output_stride=16, multi_grid=(1, 2, 4))
    assert [c.depthwise.dilation[0] for c in x65.blocks[-1].convs] == [2, 4, 8]
    x65.set_output_stride(8)
    assert [c.depthwise.dilation[0] for c in x65.blocks[-1].convs] == [4, 8, 16]
    mb = mobilenetv2(width_mult=0.35, output_stride=16, multi_grid=(1, 2, 4))
    # Last stage = the stride-32 block and the three after it; the first keeps the old rate (1).
    assert [mb.features[i].depthwise.dilation[0] for i in range(14, 18)] == [1, 4, 8, 2]
    xc = xception(middle_blocks=1, output_stride=8, multi_grid=(1, 2))
    assert [c.depthwise.dilation[0] for c in xc.exit] == [4, 8]
