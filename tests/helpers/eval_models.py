"""Tiny models whose predictions the tests control."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RedChannelClassifier(nn.Module):
    """Predicts, at every pixel, the class written in the uint8 red channel (clamped to K-1).

    Takes uint8 images as a Segmentor does, so an image whose red channel is a label map yields
    exactly that label map: the evaluator's answers can be worked out by hand.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.output_stride = 1

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        labels = x[:, 0].long().clamp(0, self.num_classes - 1)
        return {"out": F.one_hot(labels, self.num_classes).permute(0, 3, 1, 2).float() * 10}


class Pointwise(nn.Module):
    """A 1x1 conv: no spatial context, so whole / slide / flip must agree exactly."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"out": self.conv(x)}


class ContextNet(nn.Module):
    """A small net with a 7x7 receptive field and a global-pooling term: windows change results."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.cls = nn.Conv2d(8, num_classes, 1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:  # uint8 0..255, as a Segmentor takes
        h = torch.relu(self.conv2(torch.relu(self.conv1(x.float() / 255))))
        return {"out": self.cls(h + h.mean((2, 3), keepdim=True))}
