"""Heads on synthetic feature lists: shapes at every output stride, stride-based input choice, errors."""

from __future__ import annotations

import math

import pytest
import torch

from segkit.features import FeatureInfo
from segkit.heads import (
    AuxFCNHead,
    DeepLabV3Head,
    DeepLabV3PlusHead,
    FCNHead,
    Head,
    scale_rates,
)
from segkit.nn.context import ASPP, PyramidPooling
from segkit.nn.conv import ConvBNAct

CHANNELS = [8, 12, 16, 24]
STRIDES = {32: [4, 8, 16, 32], 16: [4, 8, 16, 16], 8: [4, 8, 8, 8]}


def contract(channels, strides, nominal=None) -> list[FeatureInfo]:
    """A backbone's ``feature_info``; ``nominal=None``: undilated (nominal = actual strides)."""
    nominal = nominal or strides
    return [FeatureInfo(c, s, f"stage{i}", n) for i, (c, s, n) in
            enumerate(zip(channels, strides, nominal, strict=True))]  # fmt: skip


#: What a backbone with CHANNELS reports at each output stride (nominal strides 4, 8, 16, 32).
INFO = {os: contract(CHANNELS, strides, STRIDES[32]) for os, strides in STRIDES.items()}


def features(output_stride: int, h: int = 64, w: int = 64, batch: int = 2) -> list[torch.Tensor]:
    """Random features shaped like a 'same'-padded backbone's: ceil(H / s) x ceil(W / s)."""
    return [
        torch.randn(batch, c, math.ceil(h / s), math.ceil(w / s))
        for c, s in zip(CHANNELS, STRIDES[output_stride], strict=True)
    ]


@pytest.mark.parametrize(
    ("channels", "strides", "nominal"),
    [
        ([8, 16, 24, 32], [16, 16, 16, 16], [16, 16, 16, 16]),  # a ViT-like timm backbone
        ([8, 24, 32], [4, 16, 32], [4, 16, 32]),  # a skipped stage (out_indices)
        ([8, 8, 16, 24, 32], [4, 4, 8, 16, 16], [4, 4, 8, 16, 32]),  # two features per stage
    ],
)
def test_heads_take_the_nominal_strides_from_the_contract(channels, strides, nominal):
    """No stride heuristic: valid timm contracts that the old "strides double per stage" rule
    rejected or misread build, and the heads follow the backbone's nominal strides."""
    info = contract(channels, strides, nominal)
    head = DeepLabV3Head(info, 3, aspp_channels=8)
    assert isinstance(head, Head) and head.nominal_strides == tuple(nominal)
    if 16 in nominal[:-1]:
        assert AuxFCNHead(info, 3).index == nominal.index(16)
    if 4 in strides:
        plus = DeepLabV3PlusHead(info, 3, aspp_channels=8, decoder_channels=8)
        assert plus.low_index == 0


def test_head_contract_errors_name_the_strides():
    with pytest.raises(ValueError, match=r"FCN-8s \(skip\) needs a nominal stride-8 feature"):
        FCNHead(contract([8, 24, 32], [4, 16, 32]), 3, fcn_variant="8s")
    with pytest.raises(ValueError, match="no features"):
        FCNHead([], 3)


def test_scale_rates():
    assert scale_rates((6, 12, 18), 16) == (6, 12, 18)
    assert scale_rates((6, 12, 18), 8) == (12, 24, 36)
    assert scale_rates((6, 12, 18), 32) == (3, 6, 9)
    with pytest.raises(ValueError, match="rate 5 would become 2.5"):
        scale_rates((5, 12), 32)


# ---- FCN ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output_stride", "variant"),
    [(32, "32s"), (32, "16s"), (32, "8s"), (16, "16s"), (16, "8s"), (8, "8s")],
)
@pytest.mark.parametrize("size", [(64, 64), (72, 88)])
def test_fcn_predicts_at_its_variant_stride(output_stride, variant, size):
    head = FCNHead(INFO[output_stride], 5, fcn_variant=variant)
    n = int(variant[:-1])
    y = head(features(output_stride, *size))
    assert y.shape == (2, 5, math.ceil(size[0] / n), math.ceil(size[1] / n))


@pytest.mark.parametrize(
    ("output_stride", "variant", "fix"),
    [
        (8, "32s", "use fcn_variant=8s or output_stride=32"),
        (8, "16s", "use fcn_variant=8s or output_stride=16 or 32"),
        (16, "32s", "use fcn_variant=16s or fcn_variant=8s or output_stride=32"),
    ],
)
def test_fcn_impossible_variant_says_why(output_stride, variant, fix):
    with pytest.raises(ValueError, match=f"predicts at stride {variant[:-1]} but") as err:
        FCNHead(INFO[output_stride], 5, fcn_variant=variant)
    assert fix in str(err.value)
    assert f"output stride is {output_stride}" in str(err.value)


def test_fcn_unknown_variant_lists_choices():
    with pytest.raises(ValueError, match=r"\['32s', '16s', '8s'\].*'4s'"):
        FCNHead(INFO[32], 5, fcn_variant="4s")


def test_fcn_skip_scores_start_at_zero():
    """Zero-initialised skip scores: at init FCN-8s ignores the stride-8/16 features (FCN sec. 4.2)."""
    head = FCNHead(INFO[32], 5, fcn_variant="8s").eval()
    feats = features(32)
    other = [feats[0], torch.randn_like(feats[1]), torch.randn_like(feats[2]), feats[3]]
    torch.testing.assert_close(head(feats), head(other))
    for conv in head.score_skips:
        torch.nn.init.normal_(conv.weight)
    assert not torch.allclose(head(feats), head(other))


def test_fcn_skips_are_picked_by_stride():
    head = FCNHead(contract([4, 8, 16, 32, 64], [2, 4, 8, 16, 32]), 3, fcn_variant="8s")
    assert head.skip_indices == [3, 2]  # nominal strides 16 and 8
    assert [c.in_channels for c in head.score_skips] == [32, 16]


def test_fcn_output_stride_switch_matches_a_head_built_there():
    built32 = FCNHead(INFO[32], 5, fcn_variant="8s").eval()
    built16 = FCNHead(INFO[16], 5, fcn_variant="8s").eval()
    built16.load_state_dict(built32.state_dict())  # same structure at every output stride
    feats = features(16)
    assert [up.weight.requires_grad for up in built32.upsamples] == [True, True]
    built32.set_output_stride(16)
    torch.testing.assert_close(built32(feats), built16(feats))
    # the 32 -> 16 upsampler is skipped at OS 16: frozen, so it is not an unused trainable parameter
    assert [up.weight.requires_grad for up in built32.upsamples] == [False, True]
    assert [up.weight.requires_grad for up in built16.upsamples] == [False, True]
    built32.set_output_stride(32)
    assert [up.weight.requires_grad for up in built32.upsamples] == [True, True]
    with pytest.raises(ValueError, match="fcn_variant=16s predicts"):
        FCNHead(INFO[32], 5, fcn_variant="16s").set_output_stride(8)


# ---- DeepLab --------------------------------------------------------------------------------------


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_deeplabv3_scales_rates_and_predicts_at_output_stride(output_stride):
    head = DeepLabV3Head(INFO[output_stride], 5, aspp_channels=16)
    assert head.context.rates == tuple(r * 16 // output_stride for r in (6, 12, 18))
    y = head(features(output_stride))
    assert y.shape == (2, 5, 64 // output_stride, 64 // output_stride)
    head.set_output_stride(8)
    assert head.context.rates == (12, 24, 36)


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("context", ["aspp", "pyramid_pooling", "none"])
def test_deeplabv3plus_predicts_at_stride_4(output_stride, context):
    head = DeepLabV3PlusHead(
        INFO[output_stride], 5, aspp_channels=16, decoder_channels=16, context=context
    )
    y = head(features(output_stride, 72, 60))
    assert y.shape == (2, 5, 18, 15)
    assert head.low_level[0].in_channels == CHANNELS[0]  # the stride-4 feature
    expected = {"aspp": ASPP, "pyramid_pooling": PyramidPooling, "none": ConvBNAct}[context]
    assert isinstance(head.context, expected)


def test_deeplabv3plus_separable_is_cheaper():
    def count(separable: bool) -> int:
        head = DeepLabV3PlusHead(INFO[16], 5, separable=separable)
        return sum(p.numel() for p in head.parameters())

    assert count(True) < count(False) / 3


def test_deeplabv3plus_errors():
    choices = r"context must be one of \['aspp', 'pyramid_pooling', 'none'\]"
    with pytest.raises(ValueError, match=choices):
        DeepLabV3PlusHead(INFO[16], 5, context="psp")
    with pytest.raises(ValueError, match=choices):  # the former alias of pyramid_pooling
        DeepLabV3PlusHead(INFO[16], 5, context="spp")
    with pytest.raises(ValueError, match="needs a stride-4 feature"):
        DeepLabV3PlusHead(contract([8, 16, 24], [8, 16, 32]), 5)


# ---- aux ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_aux_head_reads_the_nominal_stride_16_feature(output_stride):
    head = AuxFCNHead(INFO[output_stride], 5)
    assert head.index == 2
    y = head(features(output_stride))
    assert y.shape == (2, 5, 64 // min(16, output_stride), 64 // min(16, output_stride))


def test_aux_head_needs_a_stride_16_feature_before_the_last():
    with pytest.raises(ValueError, match="set aux=False"):
        AuxFCNHead(contract([8, 16, 24], [4, 8, 16]), 5)


def test_fcn_traces_without_a_tracer_warning():
    """The skip fusion crops/pads without branching on sizes: tracing (the legacy ONNX exporter,
    torch.jit.trace) records it for every input size and warns about nothing."""
    import warnings

    class Unpacked(torch.nn.Module):
        def __init__(self, head: torch.nn.Module) -> None:
            super().__init__()
            self.head = head

        def forward(self, *feats: torch.Tensor) -> torch.Tensor:
            return self.head(list(feats))

    head = FCNHead(INFO[32], 5, fcn_variant="8s").eval()
    feats = features(32, 70, 90, batch=1)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's own deprecation notice
        traced = torch.jit.trace(Unpacked(head), tuple(feats))
    other = features(32, 100, 60, batch=1)
    with torch.no_grad():
        assert torch.equal(traced(*other), head(other))
