"""ERF of one chosen output pixel of a real image (``segkit.analysis.erf.PixelGradients``) and
its picture (``segkit.explore.drawing.heatmap_rgb``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from segkit.analysis.erf import PixelGradients, effective_receptive_field, erf_from_gradient
from segkit.explore.drawing import RADIUS_COLOURS, heatmap_rgb


def ones_conv(k: int, d: int = 1, channels: int = 3) -> nn.Conv2d:
    conv = nn.Conv2d(3, channels, k, padding=d * (k - 1) // 2, dilation=d, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    return conv


class Net(nn.Module):
    """Two 3x3 convolutions, 2 classes, a dict output like a Segmentor's."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.body(x)}


def test_erf_of_a_pixel_is_centred_on_it_and_moves_with_it():
    model = nn.Sequential(ones_conv(3), ones_conv(3))
    probe = PixelGradients(model, torch.randn(1, 3, 21, 21))
    a, b = probe.erf((6, 7)), probe.erf((13, 15))
    assert (a.centre, b.centre) == ((6, 7), (13, 15))
    # a linear stack: the same 5 x 5 triangle kernel, translated
    assert torch.allclose(a.grad[4:9, 5:10], b.grad[11:16, 13:18])
    assert a.grad[6, 7] == a.grad.max() and math.isclose(a.grad.sum().item(), 1.0, rel_tol=1e-5)
    assert (a.r50, a.r90) == (b.r50, b.r90) and a.r90 <= math.sqrt(8)


def test_the_centre_pixel_matches_the_centre_unit_erf():
    """Same unit, same definition: for a linear model the input does not matter, and the sum over
    classes of the centre-pixel ERF (``channel=None`` there) equals one class times 3 here."""
    model = nn.Sequential(ones_conv(3, d=2), ones_conv(3))
    centre = effective_receptive_field(model, input_size=17, samples=1)
    probe = PixelGradients(model, torch.randn(1, 3, 17, 17))
    assert torch.allclose(probe.erf((8, 8), channel=1).grad, centre.grad, atol=1e-6)


def test_predicted_class_by_default_and_any_class_on_request():
    torch.manual_seed(0)
    model = Net()
    probe = PixelGradients(model, torch.randn(1, 3, 12, 12))
    predicted = int(probe.logits[:, 5, 5].argmax())
    default = probe.erf((5, 5))
    assert torch.equal(default.grad, probe.erf((5, 5), channel=predicted).grad)
    other = probe.erf((5, 5), channel=1 - predicted)
    assert not torch.equal(default.grad, other.grad)
    assert all(p.grad is None for p in model.parameters())  # weights untouched, any number of calls


def test_bad_input_is_named():
    model = Net()
    with pytest.raises(ValueError, match=r"one image \(1, C, H, W\)"):
        PixelGradients(model, torch.randn(2, 3, 8, 8))
    probe = PixelGradients(model, torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"outside the 8 x 8 output"):
        probe.erf((8, 0))
    with pytest.raises(ValueError, match=r"channel must be in 0..1"):
        probe.erf((0, 0), channel=2)
    with pytest.raises(ValueError, match=r"output pixel \(2, 3\) has zero gradient"):
        erf_from_gradient(torch.zeros(3, 8, 8), (2, 3), what="output pixel (2, 3)")


def test_a_smaller_output_is_refused():
    class Pooled(nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"out": nn.functional.avg_pool2d(x, 2)}

    with pytest.raises(ValueError, match="not the input size"):
        PixelGradients(Pooled(), torch.randn(1, 3, 8, 8))


def test_heatmap_picture_blends_the_image_and_draws_the_radii():
    erf = PixelGradients(nn.Sequential(ones_conv(3, d=3)), torch.randn(1, 3, 40, 40)).erf((20, 20))
    image = np.full((40, 40, 3), 128, dtype=np.uint8)
    picture = heatmap_rgb(erf, image)
    assert picture.shape == (40, 40, 3) and picture.dtype == np.uint8
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert RADIUS_COLOURS[0] in colours and RADIUS_COLOURS[1] in colours
    plain = heatmap_rgb(erf)  # no image: the colour map alone
    assert not np.array_equal(plain, picture)
    with pytest.raises(ValueError, match="differ in size"):
        heatmap_rgb(erf, image[:30])
    with pytest.raises(ValueError, match="decades must be > 0"):
        heatmap_rgb(erf, decades=0)
