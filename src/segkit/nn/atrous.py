"""Atrous (dilated) convolution with two interchangeable implementations.

A rate-``r`` atrous conv inserts ``r - 1`` zeros between kernel taps: effective kernel
``k + (k - 1)(r - 1)``, same parameters, no loss of resolution (DeepLab, Chen et al. 2017).

* ``impl="dilation"``: dilate the kernel (``nn.Conv2d(dilation=r)``, the cuDNN/oneDNN path).
* ``impl="space_to_batch"``: sample the input at interval ``r``. The padded input is split into
  ``r * r`` phase sub-images (``x[ph::r, pw::r]``), an ordinary (undilated) conv runs on all of them
  as one batch of ``B * r * r``, and the results are interleaved back. Output ``(i, j)`` reads the
  input at ``i + r*a``: all taps of one output pixel live in the same phase, so each phase is a dense
  conv. This is the TensorFlow ``atrous_conv2d`` formulation.

Both give identical outputs (tests/nn/test_atrous.py); benchmarks/bench_atrous.py says which is faster.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

AtrousImpl = Literal["dilation", "space_to_batch"]
ATROUS_IMPLS: tuple[str, ...] = ("dilation", "space_to_batch")


def check_atrous_impl(impl: str) -> str:
    """Validate a user-given atrous implementation name."""
    if impl not in ATROUS_IMPLS:
        raise ValueError(f"atrous_impl must be one of {ATROUS_IMPLS}, got {impl!r}")
    return impl


def space_to_batch_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    *,
    stride: int,
    padding: int,
    dilation: int,
    groups: int,
) -> Tensor:
    """``F.conv2d(x, weight, bias, stride, padding, dilation, groups)`` computed by space-to-batch.

    ``x``: (B, C_in, H, W), ``weight``: (C_out, C_in / groups, k_h, k_w) -> (B, C_out, H_out, W_out)
    with ``H_out = floor((H + 2p - r(k_h - 1) - 1) / s) + 1``. A stride > 1 is applied by
    subsampling the stride-1 result (exact, wasteful; the dilation planner never asks for stride>1
    together with rate>1 except through multi-grid at output stride 32).
    """
    r = dilation
    b, c = x.shape[:2]
    k_h, k_w = weight.shape[-2:]
    h_out = x.shape[-2] + 2 * padding - r * (k_h - 1)
    w_out = x.shape[-1] + 2 * padding - r * (k_w - 1)
    # Pad by `padding`, then up to a multiple of r so the phases have equal size.
    extra_h = -(x.shape[-2] + 2 * padding) % r
    extra_w = -(x.shape[-1] + 2 * padding) % r
    x = F.pad(x, (padding, padding + extra_w, padding, padding + extra_h))
    hs, ws = x.shape[-2] // r, x.shape[-1] // r
    # (B, C, hs, r, ws, r) -> (r, r, B, C, hs, ws) -> (r*r*B, C, hs, ws): phase-major batch.
    phases = x.view(b, c, hs, r, ws, r).permute(3, 5, 0, 1, 2, 4).reshape(r * r * b, c, hs, ws)
    y = F.conv2d(phases, weight, bias, groups=groups)
    c_out, ho, wo = y.shape[1:]
    # Interleave back: y_full[r*u + ph, r*v + pw] = phase (ph, pw) at (u, v).
    y = y.view(r, r, b, c_out, ho, wo).permute(2, 3, 4, 0, 5, 1).reshape(b, c_out, ho * r, wo * r)
    y = y[:, :, :h_out, :w_out]
    if stride > 1:
        y = y[:, :, ::stride, ::stride]
    return y


class AtrousConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose dilated forward can run as space-to-batch.

    Same parameters and state-dict keys as ``nn.Conv2d`` (so pretrained weights load unchanged), and
    the dilation planner can change ``stride``/``dilation``/``padding`` in place like any conv.
    Input (B, C_in, H, W) -> (B, C_out, H_out, W_out), sizes as ``nn.Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
        impl: AtrousImpl = "dilation",
    ) -> None:
        if padding is None:
            padding = (kernel_size - 1) * dilation // 2
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.impl = check_atrous_impl(impl)

    def forward(self, x: Tensor) -> Tensor:
        r = self.dilation[0]
        if self.impl == "dilation" or r == 1:
            return super().forward(x)
        if (
            self.dilation[1] != r
            or self.stride[0] != self.stride[1]
            or self.padding[0] != self.padding[1]
        ):
            raise ValueError(
                "space_to_batch atrous conv needs square dilation/stride/padding, got "
                f"dilation={self.dilation}, stride={self.stride}, padding={self.padding}"
            )
        return space_to_batch_conv2d(
            x,
            self.weight,
            self.bias,
            stride=self.stride[0],
            padding=int(self.padding[0]),
            dilation=r,
            groups=self.groups,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl}"


def set_atrous_impl(module: nn.Module, impl: AtrousImpl) -> None:
    """Run every ``AtrousConv2d`` inside ``module`` with ``impl`` (an attribute: weights, outputs
    and state-dict keys are unchanged). The one switch of a whole model
    (``Segmentor.set_atrous_impl``), applied to the backbone's convs and the heads' alike."""
    check_atrous_impl(impl)
    for m in module.modules():
        if isinstance(m, AtrousConv2d):
            m.impl = impl


def atrous_impl_of(module: nn.Module) -> str:
    """The implementation the ``AtrousConv2d`` layers of ``module`` use ("dilation" if none)."""
    impls = sorted({m.impl for m in module.modules() if isinstance(m, AtrousConv2d)})
    if len(impls) > 1:
        raise ValueError(
            f"{type(module).__name__} mixes atrous implementations {impls}; "
            "call set_atrous_impl(module, impl) to select one"
        )
    return impls[0] if impls else "dilation"
