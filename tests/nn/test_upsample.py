"""Bilinear-initialised transposed conv: output size formula and equality with interpolation."""

import pytest
import torch
import torch.nn.functional as F

from segkit.nn.upsample import BilinearConvTranspose2d, bilinear_kernel


def test_bilinear_kernel_factor_2() -> None:
    taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(bilinear_kernel(2), torch.outer(taps, taps))


def test_bilinear_kernel_factor_3_is_a_tent() -> None:
    taps = torch.tensor([1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3])
    torch.testing.assert_close(bilinear_kernel(3), torch.outer(taps, taps))


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
@pytest.mark.parametrize("n", [1, 5, 7])
def test_output_size_formula(scale: int, n: int) -> None:
    up = BilinearConvTranspose2d(3, scale)
    k, s, p = up.kernel_size[0], up.stride[0], up.padding[0]
    expected = (n - 1) * s - 2 * p + k
    assert expected == n * scale
    assert up(torch.randn(1, 3, n, n + 1)).shape == (1, 3, expected, (n + 1 - 1) * s - 2 * p + k)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_equals_bilinear_interpolation_at_init(scale: int) -> None:
    """Equal to F.interpolate(mode="bilinear", align_corners=False) away from the border: there
    interpolation clamps to the edge pixel while the transposed conv reads zero padding."""
    torch.manual_seed(scale)
    x = torch.randn(2, 4, 9, 11)
    up = BilinearConvTranspose2d(4, scale)
    ref = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    out = up(x)
    m = scale // 2  # border band that differs (see segkit.nn.upsample)
    torch.testing.assert_close(out[..., m:-m, m:-m], ref[..., m:-m, m:-m], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out[..., 0, :], ref[..., 0, :])  # the border really differs


def test_channels_do_not_mix_at_init_but_weights_are_full() -> None:
    up = BilinearConvTranspose2d(3, 2)
    assert up.weight.shape == (3, 3, 4, 4)
    assert up.weight.requires_grad
    x = torch.zeros(1, 3, 4, 4)
    x[0, 1] = 1.0
    y = up(x)
    assert y[0, 0].abs().sum() == 0 and y[0, 2].abs().sum() == 0 and y[0, 1].abs().sum() > 0


@pytest.mark.parametrize(
    ("n", "k", "s", "p", "output_padding"), [(5, 3, 2, 1, 1), (6, 4, 2, 1, 0), (4, 5, 3, 2, 2)]
)
def test_transposed_conv_is_zero_insertion_then_conv(n, k, s, p, output_padding) -> None:
    """SEED-NOTES: insert s - 1 zeros between input pixels, pad by k - 1 - p (+ output_padding at the
    bottom/right), run an ordinary conv with the flipped kernel; output (n - 1)s - 2p + k (+ op)."""
    torch.manual_seed(n + k)
    c_in, c_out = 3, 2
    up = torch.nn.ConvTranspose2d(
        c_in, c_out, k, stride=s, padding=p, output_padding=output_padding
    )
    x = torch.randn(1, c_in, n, n + 1)
    y = up(x)
    assert y.shape[-2:] == tuple((m - 1) * s - 2 * p + k + output_padding for m in (n, n + 1))
    stuffed = torch.zeros(1, c_in, (n - 1) * s + 1, n * s + 1)
    stuffed[..., ::s, ::s] = x
    q = k - 1 - p
    stuffed = F.pad(stuffed, (q, q + output_padding, q, q + output_padding))
    kernel = up.weight.flip(-1, -2).transpose(0, 1)  # (C_in, C_out, k, k) -> (C_out, C_in, k, k)
    torch.testing.assert_close(y, F.conv2d(stuffed, kernel, up.bias), atol=1e-5, rtol=1e-5)


def test_bilinear_upsampler_params_and_multiply_adds() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    c, s, h, w = 5, 2, 6, 7
    up = BilinearConvTranspose2d(c, s, bias=True)
    k = 2 * s
    assert sum(p.numel() for p in up.parameters()) == c * c * k * k + c
    with FlopCounterMode(display=False) as counter:
        up(torch.randn(1, c, h, w))
    assert counter.get_total_flops() // 2 == c * c * k * k * h * w  # every input pixel x kernel
