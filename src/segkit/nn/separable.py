"""Spatially separable convolution: a K x K kernel of rank 1 as a K x 1 conv then a 1 x K conv.

``[[3, 6, 9], [4, 8, 12], [5, 10, 15]] = [3, 4, 5]^T [1, 2, 3]``: the two 1-D passes compute the same
output with ``2K`` instead of ``K^2`` multiplications per position and channel pair (only rank-1
kernels can be written this way, so as a layer it is a restriction, as in Inception-v3's 7x1/1x7).
Group conv needs no class of its own: ``nn.Conv2d(groups=g)`` / ``ConvBNAct(groups=g)``; ``g = 1`` is a
standard conv, ``g = C_in`` a depthwise conv.
"""

from __future__ import annotations

from torch import Tensor, nn


class SpatiallySeparableConv2d(nn.Module):
    """K x 1 conv (C_in -> C_mid) then 1 x K conv (C_mid -> C_out), 'same' padding, stride 1.

    Input (B, C_in, H, W) -> (B, C_out, H, W). Params ``K*C_in*C_mid + K*C_mid*C_out`` (+ biases);
    ``mid_channels`` defaults to ``out_channels``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        mid_channels: int | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        mid = out_channels if mid_channels is None else mid_channels
        pad = kernel_size // 2
        self.vertical = nn.Conv2d(in_channels, mid, (kernel_size, 1), padding=(pad, 0), bias=bias)
        self.horizontal = nn.Conv2d(
            mid, out_channels, (1, kernel_size), padding=(0, pad), bias=bias
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.horizontal(self.vertical(x))
