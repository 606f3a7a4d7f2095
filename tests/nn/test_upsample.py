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
