"""Transposed-convolution upsampling initialised as bilinear interpolation (FCN, Long et al. 2015).

A transposed conv inserts ``s - 1`` zeros between input pixels, pads, and runs an ordinary conv:
output size ``(n - 1) * s - 2p + k`` (+ output_padding). With the FCN kernel of size ``k = 2s - s % 2``
and ``p = ceil((s - 1) / 2)`` (``s // 2`` for even ``s``) the output is exactly ``n * s`` and, at init,
equals ``F.interpolate(scale_factor=s, mode="bilinear", align_corners=False)`` everywhere except the
outermost ``s // 2`` pixels of each border (interpolation clamps at the border, the transposed
conv sees zeros there).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def bilinear_kernel(scale_factor: int) -> Tensor:
    """The 2-D bilinear upsampling kernel for factor ``s``: (k, k), ``k = 2s - s % 2``.

    Separable: ``outer(w, w)`` with ``w[i] = 1 - |i - c| / s`` and ``c`` the kernel centre.
    """
    if scale_factor < 1:
        raise ValueError(f"scale_factor must be >= 1, got {scale_factor}")
    k = 2 * scale_factor - scale_factor % 2
    center = scale_factor - 1 if k % 2 == 1 else scale_factor - 0.5
    taps = 1 - (torch.arange(k, dtype=torch.float64) - center).abs() / scale_factor
    return torch.outer(taps, taps).float()


class BilinearConvTranspose2d(nn.ConvTranspose2d):
    """Learnable ``x s`` upsampling, channel-wise, initialised as bilinear interpolation.

    Input (B, C, H, W) -> (B, C, s*H, s*W). ``groups=channels`` would be cheaper, but FCN learns a
    full C x C kernel (channels may mix during training), so the init is a diagonal: channel i only
    reads channel i.
    """

    def __init__(self, channels: int, scale_factor: int, *, bias: bool = False) -> None:
        k = 2 * scale_factor - scale_factor % 2
        # Even s: k = 2s, p = s/2; odd s: k = 2s - 1, p = (s-1)/2. Both give (n-1)s - 2p + k = n*s.
        padding = scale_factor // 2
        super().__init__(channels, channels, k, stride=scale_factor, padding=padding, bias=bias)
        self.scale_factor = scale_factor
        self.reset_parameters_bilinear()

    def reset_parameters_bilinear(self) -> None:
        """Set the weight to the bilinear kernel on the channel diagonal, bias to 0."""
        kernel = bilinear_kernel(self.scale_factor)
        with torch.no_grad():
            self.weight.zero_()
            idx = torch.arange(self.in_channels)
            self.weight[idx, idx] = kernel
            if self.bias is not None:
                self.bias.zero_()
