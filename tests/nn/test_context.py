"""Pyramid pooling and ASPP: shapes, params and multiply-adds against the formulas, rate changes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segkit.nn.context import ASPP, ASPPPooling, PyramidPooling


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward; FlopCounterMode counts a conv's FLOPs as 2 x MACs."""
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() // 2


def aspp_param_formula(c_in: int, c: int, n_rates: int, separable: bool) -> int:
    conv1x1 = c_in * c + 2 * c
    if separable:
        atrous = n_rates * (9 * c_in + 2 * c_in + c_in * c + 2 * c)
    else:
        atrous = n_rates * (9 * c_in * c + 2 * c)
    pooling = c_in * c + c  # biased 1x1, no BN
    project = (n_rates + 2) * c * c + 2 * c
    return conv1x1 + atrous + pooling + project


def aspp_mac_formula(c_in: int, c: int, n_rates: int, separable: bool, hw: int) -> int:
    atrous = (9 * c_in + c_in * c) if separable else 9 * c_in * c
    per_pixel = c_in * c + n_rates * atrous + (n_rates + 2) * c * c
    return per_pixel * hw + c_in * c  # pooling branch runs on a 1x1 map


@pytest.mark.parametrize("separable", [False, True])
def test_aspp_params_and_macs_match_formulas(separable):
    c_in, c, h, w = 24, 16, 9, 11
    aspp = ASPP(c_in, c, (1, 2, 3), separable=separable)
    assert n_params(aspp) == aspp_param_formula(c_in, c, 3, separable)
    assert macs(aspp, torch.randn(1, c_in, h, w)) == aspp_mac_formula(c_in, c, 3, separable, h * w)


def test_aspp_keeps_size_and_has_the_given_rates():
    aspp = ASPP(8, 16, (6, 12, 18)).eval()
    y = aspp(torch.randn(2, 8, 5, 7))
    assert y.shape == (2, 16, 5, 7)
    assert aspp.rates == (6, 12, 18)


@pytest.mark.parametrize("separable", [False, True])
def test_set_rates_equals_a_model_built_with_those_rates(separable):
    torch.manual_seed(0)
    switched = ASPP(8, 16, (6, 12, 18), separable=separable).eval()
    built = ASPP(8, 16, (12, 24, 36), separable=separable).eval()
    built.load_state_dict(switched.state_dict())
    x = torch.randn(1, 8, 20, 20)
    before = switched(x)
    switched.set_rates((12, 24, 36))
    assert switched.rates == (12, 24, 36)
    torch.testing.assert_close(switched(x), built(x))
    assert not torch.allclose(before, built(x))  # the rates matter at this size


def test_set_rates_rejects_bad_rates():
    aspp = ASPP(4, 4, (6, 12, 18))
    with pytest.raises(ValueError, match="3 atrous rates"):
        aspp.set_rates((6, 12))
    with pytest.raises(ValueError, match="positive integers"):
        ASPP(4, 4, (6, 0, 18))


def test_aspp_trains_at_batch_size_one():
    """BN on the pooled (1, C, 1, 1) map would raise in train mode; the pooling branch has none."""
    aspp = ASPP(8, 16, (1, 2, 3)).train()
    y = aspp(torch.randn(1, 8, 4, 4))
    y.sum().backward()
    assert aspp.pooling.conv.weight.grad is not None


def test_image_pooling_is_per_sample_in_train_mode():
    pool = ASPPPooling(8, 4).train()
    x = torch.randn(3, 8, 5, 6)
    together = pool(x)
    alone = torch.cat([pool(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone)
    assert together.shape == (3, 4, 5, 6)
    # broadcast of the per-image feature: constant over space
    assert torch.equal(together, together[..., :1, :1].expand_as(together))


def test_pyramid_pooling_shape_params_and_macs():
    c_in, c, cb, h, w = 12, 16, 4, 8, 8
    pp = PyramidPooling(c_in, c, (1, 2, 4), branch_channels=cb)
    y = pp.eval()(torch.randn(2, c_in, h, w))
    assert y.shape == (2, c, h, w)
    params = 3 * (c_in * cb + cb) + (c_in + 3 * cb) * c + 2 * c
    assert n_params(pp) == params
    pooled_macs = sum(b * b for b in (1, 2, 4)) * c_in * cb
    assert macs(pp, torch.randn(1, c_in, h, w)) == pooled_macs + (c_in + 3 * cb) * c * h * w


def test_pyramid_pooling_trains_at_batch_size_one():
    pp = PyramidPooling(8, 8).train()
    pp(torch.randn(1, 8, 3, 5)).mean().backward()


@pytest.mark.parametrize("separable", [False, True])
def test_aspp_atrous_impls_agree(separable):
    torch.manual_seed(0)
    dense = ASPP(6, 8, (2, 3, 5), separable=separable).eval()
    s2b = ASPP(6, 8, (2, 3, 5), separable=separable, atrous_impl="space_to_batch").eval()
    s2b.load_state_dict(dense.state_dict())
    x = torch.randn(2, 6, 11, 9)
    torch.testing.assert_close(s2b(x), dense(x))
    s2b.set_rates((4, 6, 10))
    dense.set_rates((4, 6, 10))
    torch.testing.assert_close(s2b(x), dense(x))
