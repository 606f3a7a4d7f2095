"""Weight-decay groups (norm, bias, depthwise) and the backbone LR multiplier."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segkit.nn.conv import ConvBNAct, SeparableConv2d
from segkit.training.param_groups import build_param_groups, is_depthwise


class TinySegmentor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(ConvBNAct(3, 8, stride=2), SeparableConv2d(8, 16))
        self.head = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.GroupNorm(4, 16))
        self.aux_head = nn.Conv2d(16, 5, 1)  # with bias


def split_decay(model: nn.Module, *, no_decay_depthwise: bool = True) -> tuple[list, list]:
    """(decayed, not decayed) parameters, as build_param_groups files them."""
    groups = build_param_groups(
        model, lr=1.0, weight_decay=1.0, no_decay_depthwise=no_decay_depthwise
    )
    decay = [p for g in groups if g["weight_decay"] > 0 for p in g["params"]]
    return decay, [p for g in groups if g["weight_decay"] == 0 for p in g["params"]]


def _ids(params) -> set[int]:
    return {id(p) for p in params}


def test_depthwise_detection_on_real_separable_conv() -> None:
    sep = SeparableConv2d(8, 16)
    assert is_depthwise(sep.depthwise)
    assert not is_depthwise(sep.pointwise)
    # channel multiplier 2: two 3x3 filters per input channel, each still sees one channel
    assert is_depthwise(nn.Conv2d(8, 16, 3, groups=8))
    assert not is_depthwise(nn.Conv2d(8, 8, 3, groups=4))  # grouped: 2 input channels per filter
    assert not is_depthwise(nn.Conv2d(1, 1, 3))  # groups=1 is an ordinary conv


@pytest.mark.parametrize(
    ("builder", "kwargs", "expected"),
    [
        # one depthwise conv per inverted-residual block: 17 blocks
        ("mobilenetv2", {}, 17),
        # Chollet's Xception: 2 x 3 entry + 3 x 8 middle + 2 exit-block + 2 exit-flow separable convs
        ("xception", {}, 34),
        # 3 separable convs x (3 entry + 16 middle + 1 exit) blocks + 3 exit-flow separable convs
        ("xception65", {}, 63),
        # timm's MobileNetV3-Small: one depthwise conv in each of its 11 bneck blocks
        ("timm_backbone", {"model_name": "mobilenetv3_small_050"}, 11),
    ],
)
def test_depthwise_weights_of_every_backbone_get_no_decay(builder, kwargs, expected) -> None:
    import segkit.backbones as backbones

    model = getattr(backbones, builder)(output_stride=16, **kwargs)
    dw = [m.weight for m in model.modules() if is_depthwise(m)]
    assert len(dw) == expected
    decay, no_decay = split_decay(model, no_decay_depthwise=True)
    assert _ids(dw) <= _ids(no_decay) and not _ids(dw) & _ids(decay)
    # every decayed tensor is a conv/linear weight (>= 2-D); norms and biases never are
    assert all(p.ndim >= 2 for p in decay)
    decay_on, _ = split_decay(model, no_decay_depthwise=False)
    assert _ids(dw) <= _ids(decay_on)


def test_one_dim_params_of_unknown_norms_and_layer_scale_get_no_decay() -> None:
    class RmsNormLike(nn.Module):  # not a torch norm class
        def __init__(self, c: int) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(c))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, bias=False)
            self.norm = RmsNormLike(4)
            self.gamma = nn.Parameter(torch.full((4,), 1e-6))  # ConvNeXt-style layer scale

    block = Block()
    decay, no_decay = split_decay(block)
    assert _ids(decay) == {id(block.conv.weight)}
    assert _ids(no_decay) == {id(block.norm.scale), id(block.gamma)}


def test_split_decay_norm_bias_depthwise() -> None:
    sep = SeparableConv2d(8, 16)
    decay, no_decay = split_decay(sep, no_decay_depthwise=True)
    assert _ids(decay) == {id(sep.pointwise.weight)}
    assert _ids(no_decay) == {id(sep.depthwise.weight), id(sep.norm.weight), id(sep.norm.bias)}
    decay, _ = split_decay(sep, no_decay_depthwise=False)
    assert _ids(decay) == {id(sep.pointwise.weight), id(sep.depthwise.weight)}


def test_groups_cover_every_parameter_once_with_lr_mult() -> None:
    model = TinySegmentor()
    groups = build_param_groups(model, lr=0.1, weight_decay=1e-4, backbone_lr_mult=0.1)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"backbone/decay", "backbone/no_decay", "head/decay", "head/no_decay"}
    all_ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(all_ids) == sorted(id(p) for p in model.parameters())
    assert by_name["backbone/decay"]["lr"] == pytest.approx(0.01)
    assert by_name["head/decay"]["lr"] == pytest.approx(0.1)
    assert by_name["head/no_decay"]["weight_decay"] == 0.0
    assert by_name["backbone/decay"]["weight_decay"] == 1e-4
    # the aux head's bias and the GroupNorm affine params are not decayed
    assert id(model.aux_head.bias) in _ids(by_name["head/no_decay"]["params"])
    assert id(model.head[1].weight) in _ids(by_name["head/no_decay"]["params"])
    assert id(model.aux_head.weight) in _ids(by_name["head/decay"]["params"])
    # the depthwise weight sits in the backbone's no-decay group
    dw = model.backbone[1].depthwise.weight
    assert id(dw) in _ids(by_name["backbone/no_decay"]["params"])


def test_frozen_params_are_left_out() -> None:
    model = TinySegmentor()
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    groups = build_param_groups(model, lr=0.1, weight_decay=1e-4)
    assert all(g["name"].startswith("head") for g in groups)
