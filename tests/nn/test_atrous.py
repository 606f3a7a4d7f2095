"""Atrous conv: the space-to-batch implementation equals the dilated-kernel one."""

import pytest
import torch
import torch.nn.functional as F

from segkit.nn.atrous import AtrousConv2d, space_to_batch_conv2d
from segkit.nn.conv import ConvBNAct, SeparableConv2d


@pytest.mark.parametrize("rate", [2, 3, 4, 6])
@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("size", [(17, 17), (23, 30), (8, 5)])
def test_space_to_batch_equals_dilation(rate: int, kernel: int, size: tuple[int, int]) -> None:
    torch.manual_seed(rate * 10 + kernel)
    x = torch.randn(2, 4, *size)
    w = torch.randn(6, 4, kernel, kernel)
    b = torch.randn(6)
    pad = (kernel - 1) * rate // 2
    ref = F.conv2d(x, w, b, padding=pad, dilation=rate)
    out = space_to_batch_conv2d(x, w, b, stride=1, padding=pad, dilation=rate, groups=1)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("padding", "stride", "groups"), [(0, 1, 1), (1, 1, 4), (4, 2, 2), (3, 3, 1)]
)
def test_space_to_batch_other_padding_stride_groups(padding: int, stride: int, groups: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 19, 21)
    w = torch.randn(8, 4 // groups, 3, 3)
    ref = F.conv2d(x, w, None, stride=stride, padding=padding, dilation=3, groups=groups)
    out = space_to_batch_conv2d(
        x, w, None, stride=stride, padding=padding, dilation=3, groups=groups
    )
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_module_impls_share_weights_and_output() -> None:
    torch.manual_seed(0)
    a = AtrousConv2d(5, 7, 3, dilation=4, bias=True, impl="dilation")
    b = AtrousConv2d(5, 7, 3, dilation=4, bias=True, impl="space_to_batch")
    b.load_state_dict(a.state_dict())
    assert list(a.state_dict()) == ["weight", "bias"]  # same keys as nn.Conv2d
    x = torch.randn(2, 5, 15, 13, requires_grad=True)
    ya, yb = a(x), b(x)
    assert ya.shape == (2, 7, 15, 13)
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-5)
    (ga,) = torch.autograd.grad(ya.sum(), x)
    (gb,) = torch.autograd.grad(yb.sum(), x)
    torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-5)


def test_depthwise_blocks_accept_impl() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 8, 16, 16)
    for cls_kwargs in ({"groups": 8}, {}):
        a = ConvBNAct(8, 8, 3, dilation=2, atrous_impl="dilation", **cls_kwargs).eval()
        b = ConvBNAct(8, 8, 3, dilation=2, atrous_impl="space_to_batch", **cls_kwargs).eval()
        b.load_state_dict(a.state_dict())
        torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)
    s1 = SeparableConv2d(8, 4, dilation=3, atrous_impl="dilation").eval()
    s2 = SeparableConv2d(8, 4, dilation=3, atrous_impl="space_to_batch").eval()
    s2.load_state_dict(s1.state_dict())
    torch.testing.assert_close(s1(x), s2(x), atol=1e-5, rtol=1e-5)


def test_unknown_impl_is_rejected() -> None:
    with pytest.raises(ValueError, match="atrous_impl must be one of"):
        AtrousConv2d(3, 3, 3, dilation=2, impl="im2col")  # type: ignore[arg-type]


@pytest.mark.parametrize(("kernel", "rate"), [(3, 2), (3, 6), (5, 3)])
def test_dilation_is_a_zero_stuffed_kernel_with_the_same_params_and_madds(kernel, rate) -> None:
    """SEED-NOTES: rate r inserts r - 1 zeros between kernel taps (effective size k + (k-1)(r-1));
    parameters and multiply-adds (counted over the k x k real taps) are those of the k x k conv."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(kernel * rate)
    atrous = AtrousConv2d(3, 4, kernel, dilation=rate)
    plain = AtrousConv2d(3, 4, kernel)
    k_eff = kernel + (kernel - 1) * (rate - 1)
    stuffed = torch.zeros(4, 3, k_eff, k_eff)
    stuffed[..., ::rate, ::rate] = atrous.weight.detach()
    x = torch.randn(1, 3, 20, 17)
    ref = F.conv2d(x, stuffed, padding=k_eff // 2)
    torch.testing.assert_close(atrous(x), ref, atol=1e-5, rtol=1e-5)
    assert atrous.weight.numel() == plain.weight.numel() == 4 * 3 * kernel * kernel

    def madds(m: torch.nn.Module) -> int:
        with FlopCounterMode(display=False) as counter:
            m(x)
        return counter.get_total_flops() // 2

    assert madds(atrous) == madds(plain) == 4 * 3 * kernel * kernel * 20 * 17
