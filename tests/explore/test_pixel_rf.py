"""Receptive field of one output pixel (``segkit.analysis.pixel_rf``): the box from the graph
trace must hold every input pixel the output pixel depends on (the support of its input
gradient), and be exactly that support where the design's geometry is plain strided convs."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segkit.analysis import trace, watch_points
from segkit.analysis.erf import PixelGradients
from segkit.analysis.pixel_rf import (
    OutputGrid,
    bilinear_taps,
    output_grid,
    pixel_receptive_field,
)
from segkit.backbones import MobileNetV2
from segkit.explore.drawing import BOX_COLOUR, draw_logit_grid, draw_rf_box
from segkit.models import deeplabv3plus


class Toy(nn.Module):
    """A Segmentor-shaped net (backbone + head + bilinear resize) with a known geometry:
    strides 2, 2 (jump 4), kernels 3, 3 (dilation 2), 3: logit RF 1 + 2 + 2*2*2 + 2*4 = 19."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 4, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, 2, 2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, 1, 1),
        )
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.head(self.backbone(x))
        return {"out": F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=False)}


def support_box(model: nn.Module, x: torch.Tensor, pixel, channel: int = 0):
    """(top, left, bottom, right) of the input pixels with a non-zero gradient."""
    grad = PixelGradients(model, x).erf(pixel, channel=channel).grad > 0
    rows, cols = grad.any(1).nonzero().flatten(), grad.any(0).nonzero().flatten()
    return (rows.min().item(), cols.min().item(), rows.max().item(), cols.max().item())


def grid_of(model: nn.Module, size: tuple[int, int]) -> OutputGrid:
    model.eval()
    result = trace(model, torch.zeros(1, 3, *size), watch=watch_points(model))
    return output_grid(result, size)


@pytest.mark.parametrize("pixel", [(30, 25), (31, 24), (0, 0), (60, 49), (13, 7)])
def test_box_is_the_gradient_support_of_a_plain_strided_net(pixel):
    torch.manual_seed(0)
    model, size = Toy().eval(), (61, 50)  # odd sizes: the resize is not an integer factor
    grid = grid_of(model, size)
    assert (grid.grid, grid.stride, grid.rf) == ((16, 13), (4.0, 4.0), (19.0, 19.0))
    rf = pixel_receptive_field(grid, pixel)
    x = torch.randn(1, 3, *size)
    assert rf.box == support_box(model, x, pixel)
    assert not rf.is_global and rf.pixel == pixel
    assert rf.clipped == (pixel in [(0, 0), (60, 49), (13, 7)])


def test_image_pooling_is_global_and_the_box_is_the_whole_image():
    torch.manual_seed(0)
    model = deeplabv3plus(
        backbone=functools.partial(MobileNetV2, width_mult=0.35), num_classes=3,
        aspp_channels=8, decoder_channels=8, low_level_channels=8,
    )  # fmt: skip
    rf = pixel_receptive_field(grid_of(model, (70, 90)), (5, 80))
    assert rf.is_global and rf.box == (0, 0, 69, 89)
    assert rf.label().startswith("RF global")


def test_bilinear_taps_follow_pytorch():
    # size 10 from 5: sources (p + 0.5) / 2 - 0.5 = -0.25 (clamped: one tap), 0.25, 0.75, ...
    assert bilinear_taps(0, 5, 10) == [0]
    assert bilinear_taps(1, 5, 10) == [0, 1]
    assert bilinear_taps(9, 5, 10) == [4]  # 4.25: the last source has no right neighbour
    assert bilinear_taps(3, 7, 7) == [3]  # same size: a copy
    # a blend with weight exactly 0 is not a dependency: 33 -> 65 hits sources exactly
    assert bilinear_taps(32, 33, 65) in ([16], [15, 16], [16, 17])
    x = torch.zeros(1, 1, 5)
    for p in range(10):
        taps = bilinear_taps(p, 5, 10)
        grads = []
        for i in range(5):
            x2 = x.clone().requires_grad_(True)
            y = F.interpolate(x2, size=10, mode="linear", align_corners=False)
            (g,) = torch.autograd.grad(y[0, 0, p], x2)
            grads.append(g[0, 0, i].item())
        assert [i for i, g in enumerate(grads) if g != 0] == taps


def test_pixel_outside_the_image_is_refused():
    grid = OutputGrid((10, 10), (3, 3), (4.0, 4.0), (5.0, 5.0))
    with pytest.raises(ValueError, match=r"outside the 10 x 10 image"):
        pixel_receptive_field(grid, (10, 3))


def test_drawings_mark_the_box_and_the_grid():
    grid = OutputGrid((40, 40), (10, 10), (4.0, 4.0), (9.0, 9.0))
    rf = pixel_receptive_field(grid, (20, 20))
    image = np.full((40, 40, 3), 60, dtype=np.uint8)
    boxed = draw_rf_box(image, rf)
    top, left, bottom, right = rf.box
    assert tuple(boxed[top, (left + right) // 2]) == BOX_COLOUR
    assert tuple(boxed[(top + bottom) // 2, right]) == BOX_COLOUR
    assert (image == 60).all()  # the input is not drawn on
    gridded = draw_logit_grid(image, grid)
    lines = (gridded[:, 0] != 60).any(1).nonzero()[0].tolist()
    assert lines == [2, 6, 10, 14, 18, 22, 26, 30, 34]  # half-way between centres 0, 4, ..., 36
    with pytest.raises(ValueError, match="grid's image size"):
        draw_logit_grid(image[:30], grid)
    with pytest.raises(ValueError, match="does not fit"):
        draw_rf_box(image[:20, :20], rf)
