"""Convolution variants: parameter and multiply-add counts against the SEED-NOTES formulas, and the
act_between / norm_depthwise switches of SeparableConv2d."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segkit.nn.conv import ConvBNAct, SeparableConv2d, same_padding

C_IN, C_OUT, K, H, W = 16, 32, 3, 12, 10


def conv_params(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


def multiply_adds(module: nn.Module, x: torch.Tensor) -> int:
    """Conv multiply-adds of one forward (FlopCounterMode counts 2 FLOPs per multiply-add)."""
    convs_only = nn.Sequential(*[m for m in module.modules() if isinstance(m, nn.Conv2d)])
    with FlopCounterMode(display=False) as counter:
        convs_only(x)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("groups", [1, 2, 4, C_IN])
def test_group_conv_params_and_madds(groups: int) -> None:
    conv = ConvBNAct(C_IN, C_OUT, K, groups=groups)
    assert conv_params(conv) == C_OUT * K * K * C_IN // groups
    x = torch.randn(1, C_IN, H, W)
    assert multiply_adds(conv, x) == C_OUT * K * K * (C_IN // groups) * H * W


def test_standard_conv_output_size_formula() -> None:
    n, k, p, s = 13, 3, 1, 2
    conv = nn.Conv2d(C_IN, C_OUT, k, stride=s, padding=p)
    assert conv(torch.randn(1, C_IN, n, n)).shape[-1] == (n + 2 * p - k) // s + 1


def test_depthwise_separable_params_and_madds() -> None:
    sep = SeparableConv2d(C_IN, C_OUT, K)
    assert conv_params(sep) == C_IN * K * K + C_IN * C_OUT
    x = torch.randn(1, C_IN, H, W)
    assert multiply_adds(sep, x) == (C_IN * K * K + C_IN * C_OUT) * H * W
    # The saving the notes quote: 1/N + 1/K^2 of a full conv.
    full = C_OUT * K * K * C_IN
    assert conv_params(sep) / full == pytest.approx(1 / C_OUT + 1 / K**2)


@pytest.mark.parametrize(
    ("kind", "cls"), [("none", nn.Identity), ("relu", nn.ReLU), ("elu", nn.ELU)]
)
def test_act_between_switch(kind: str, cls: type) -> None:
    sep = SeparableConv2d(4, 8, act_between=kind)  # type: ignore[arg-type]
    assert type(sep.act_dw) is cls
    # With ReLU between, negative depthwise responses never reach the pointwise conv.
    if kind == "relu":
        seen = []
        sep.pointwise.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
        sep(torch.randn(2, 4, 8, 8))
        assert seen[0].min() >= 0


def test_act_between_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="act_between must be"):
        SeparableConv2d(4, 8, act_between="gelu")  # type: ignore[arg-type]


def test_norm_depthwise_adds_bn_after_depthwise() -> None:
    plain = SeparableConv2d(4, 8)
    aligned = SeparableConv2d(4, 8, norm_depthwise=True, act_between="relu")
    assert isinstance(plain.norm_dw, nn.Identity)
    assert isinstance(aligned.norm_dw, nn.BatchNorm2d) and aligned.norm_dw.num_features == 4


def test_same_padding_keeps_size_with_dilation() -> None:
    for k, r in [(3, 1), (3, 6), (5, 2), (1, 4)]:
        conv = nn.Conv2d(2, 2, k, padding=same_padding(k, r), dilation=r)
        assert conv(torch.randn(1, 2, 15, 15)).shape[-1] == 15
        # effective kernel k + (k-1)(r-1)
        assert 2 * same_padding(k, r) + 1 == k + (k - 1) * (r - 1)
