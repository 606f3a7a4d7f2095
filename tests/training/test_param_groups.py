"""Weight-decay groups (norm, bias, depthwise) and the backbone LR multiplier."""

from __future__ import annotations

import pytest
from torch import nn

from segkit.nn.conv import ConvBNAct, SeparableConv2d
from segkit.training.param_groups import build_param_groups, is_depthwise, split_decay


class TinySegmentor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(ConvBNAct(3, 8, stride=2), SeparableConv2d(8, 16))
        self.head = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.GroupNorm(4, 16))
        self.aux_head = nn.Conv2d(16, 5, 1)  # with bias


def _ids(params) -> set[int]:
    return {id(p) for p in params}


def test_depthwise_detection_on_real_separable_conv() -> None:
    sep = SeparableConv2d(8, 16)
    assert is_depthwise(sep.depthwise)
    assert not is_depthwise(sep.pointwise)
    assert not is_depthwise(nn.Conv2d(8, 16, 3, groups=8))  # grouped, but not one filter/channel
    assert not is_depthwise(nn.Conv2d(8, 8, 3, groups=4))


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
