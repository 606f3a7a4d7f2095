"""The backbone contract every head is sized from.

A backbone returns a list of feature maps, one per stage it exposes, and publishes for each its
channel count and its stride (reduction w.r.t. the input). Strides are non-decreasing; the last one is
the backbone's *output stride*. Heads pick their inputs by stride, never by index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

# The rule lives in segkit.checks (shared with the command line's pre-flight check); re-exported here.
from segkit.checks import VALID_OUTPUT_STRIDES, check_output_stride  # noqa: F401

OutputStride = Literal[8, 16, 32]


@dataclass(frozen=True)
class FeatureInfo:
    """One returned feature: its channels and its stride (input size / feature size)."""

    channels: int
    stride: int
    name: str = ""


class Backbone(nn.Module):
    """Base class: subclasses fill ``feature_info`` and implement ``forward`` and
    ``set_output_stride``.

    ``forward(x: (B, 3, H, W)) -> list[(B, C_i, ceil(H / s_i), ceil(W / s_i))]`` in ``feature_info``
    order.
    """

    feature_info: list[FeatureInfo]

    @property
    def channels(self) -> list[int]:
        return [f.channels for f in self.feature_info]

    @property
    def strides(self) -> list[int]:
        return [f.stride for f in self.feature_info]

    @property
    def output_stride(self) -> int:
        return self.feature_info[-1].stride

    def set_output_stride(self, output_stride: int) -> None:  # pragma: no cover - abstract
        """Re-dilate in place for a new output stride; weights are untouched."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError
