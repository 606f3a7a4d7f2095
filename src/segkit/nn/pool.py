"""Max-pooling that can be dilated: Chollet's Xception below output stride 32.

``nn.MaxPool2d`` refuses padding above half the (undilated) kernel, so a 3x3 pool at rate r > 1 cannot
keep 'same' padding there. Padding with -inf first and pooling unpadded is the same operation (-inf
never wins a max) and works at any rate.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class DilatedMaxPool2d(nn.Module):
    """k x k max-pool with stride s, dilation r and 'same'-style padding ``(k - 1) * r // 2``.

    Input (B, C, H, W) -> (B, C, floor((H + 2p - r(k-1) - 1) / s) + 1, ...). At r = 1 this is
    ``nn.MaxPool2d(k, s, padding=(k - 1) // 2)``. ``stride``/``dilation`` are plain attributes so the
    dilation planner can change them in place.
    """

    def __init__(self, kernel_size: int = 3, *, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation

    @property
    def padding(self) -> int:
        return (self.kernel_size - 1) * self.dilation // 2

    def forward(self, x: Tensor) -> Tensor:
        pad = self.padding
        if pad <= self.kernel_size // 2:
            return F.max_pool2d(x, self.kernel_size, self.stride, pad, self.dilation)
        x = F.pad(x, (pad, pad, pad, pad), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride, 0, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, dilation={self.dilation}"
