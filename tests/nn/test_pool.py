"""DilatedMaxPool2d: nn.MaxPool2d at rate 1, a dilated neighbourhood max beyond."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segkit.nn.pool import DilatedMaxPool2d


def test_rate_1_is_maxpool_3x3_stride_2_pad_1() -> None:
    x = torch.randn(2, 3, 15, 16)
    torch.testing.assert_close(DilatedMaxPool2d(3, stride=2)(x), nn.MaxPool2d(3, 2, 1)(x))


@pytest.mark.parametrize("rate", [2, 3, 4])
def test_dilated_pool_is_max_over_dilated_neighbourhood(rate: int) -> None:
    x = torch.randn(1, 2, 11, 9)
    out = DilatedMaxPool2d(3, stride=1, dilation=rate)(x)
    assert out.shape == x.shape
    # Reference: gather the 3x3 taps at distance `rate` with unfold on a -inf padded input.
    padded = F.pad(x, (rate, rate, rate, rate), value=float("-inf"))
    taps = F.unfold(padded, 3, dilation=rate).view(1, 2, 9, 11, 9)
    torch.testing.assert_close(out, taps.amax(dim=2))
