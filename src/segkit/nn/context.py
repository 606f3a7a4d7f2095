"""Context modules: pyramid pooling fused back to the map, and ASPP.

- ``PyramidPooling`` (Zhao et al., PSPNet, CVPR 2017): the 1x1, 2x2 and 4x4 bins of spatial pyramid
  pooling (He et al., ECCV 2014), each projected and upsampled back to H x W and concatenated with
  the input -- a per-pixel context module a decoder can use.
- ``ASPP`` (Chen et al., "Rethinking Atrous Convolution", DeepLabv3, 2017, sec. 3.3): a 1x1 conv,
  three 3x3 atrous convs and an image-pooling branch in parallel, concatenated, 1x1 projection,
  dropout. ``separable=True`` uses depthwise-separable atrous convs (DeepLabv3+, sec. 3.2).

Pooled branches (``ASPPPooling`` and the pyramid bins) use a biased 1x1 conv + ReLU and *no* batch norm:
BN on a (B, C, 1, 1) map normalises each channel over B values only, which is undefined at batch size 1
in train mode (PyTorch raises) and noisy at small batches. Without it the branch is per-sample, so it
works at any batch size; the BN of the 1x1 projection after the concatenation normalises over H*W*B
values and rescales the branch anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segkit.nn.atrous import AtrousImpl
from segkit.nn.conv import ConvBNAct, SeparableConv2d, same_padding


class _PooledBranch(nn.Module):
    """Adaptive average pool to ``bins`` x ``bins`` -> 1x1 conv (bias) -> ReLU -> bilinear back to H x W.

    No BN (see the module docstring). ``(B, C_in, H, W) -> (B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, bins: int = 1) -> None:
        super().__init__()
        self.bins = bins
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=True)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.act(self.conv(F.adaptive_avg_pool2d(x, self.bins)))
        if self.bins == 1:  # bilinear from one pixel is a broadcast; skip the resampling kernel
            return y.expand(-1, -1, x.shape[-2], x.shape[-1])
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPPPooling(_PooledBranch):
    """ASPP image-level features: global average pool -> 1x1 conv -> ReLU -> broadcast to H x W."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, bins=1)


class PyramidPooling(nn.Module):
    """Pyramid pooling fused back to the feature map (PSPNet-style context, bins 1, 2, 4).

    Each bin: adaptive average pool -> 1x1 conv to ``branch_channels`` -> ReLU -> bilinear to H x W;
    the branches are concatenated with the input, then a 1x1 conv-BN-ReLU projects to ``out_channels``
    and dropout follows. ``(B, C_in, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        bins: Sequence[int] = (1, 2, 4),
        *,
        branch_channels: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        branch_channels = branch_channels or max(1, in_channels // len(bins))
        self.branches = nn.ModuleList(
            _PooledBranch(in_channels, branch_channels, int(b)) for b in bins
        )
        self.project = ConvBNAct(in_channels + len(bins) * branch_channels, out_channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.cat([x, *(branch(x) for branch in self.branches)], dim=1)
        return self.dropout(self.project(y))


def _atrous_branch(
    in_channels: int, out_channels: int, rate: int, separable: bool, atrous_impl: AtrousImpl
) -> nn.Module:
    if separable:
        # DeepLabv3+ separable ASPP: BN + ReLU after the depthwise step as well.
        return SeparableConv2d(
            in_channels,
            out_channels,
            3,
            dilation=rate,
            act_between="relu",
            norm_depthwise=True,
            act_layer=nn.ReLU,
            atrous_impl=atrous_impl,
        )
    return ConvBNAct(in_channels, out_channels, 3, dilation=rate, atrous_impl=atrous_impl)


def _dilated_conv(branch: nn.Module) -> nn.Conv2d:
    """The 3x3 conv whose dilation is the branch's atrous rate."""
    conv = branch.depthwise if isinstance(branch, SeparableConv2d) else branch[0]
    assert isinstance(conv, nn.Conv2d)  # internal invariant of _atrous_branch, not a user error
    return conv


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3).

    Branches on ``(B, C_in, H, W)``: 1x1 conv-BN-ReLU; one 3x3 atrous conv-BN-ReLU per rate (padding =
    rate, so H x W is kept); optional image pooling. Concatenated to ``(n_branches * C)``, projected by a
    1x1 conv-BN-ReLU to ``C = out_channels``, then dropout. Returns ``(B, C, H, W)``.

    ``rates`` are the *actual* dilation rates; heads scale the paper's OS-16 rates (6, 12, 18) to the
    output stride and call :meth:`set_rates` when the output stride changes (weights untouched).
    ``atrous_impl`` picks how the dilated convs run (``segkit.nn.atrous``; same weights, same output).

    Params (standard convs, R rates, pooling on): ``C_in*C + R*9*C_in*C + C_in*C + C
    + (R + 2)*C*C`` conv weights/biases plus ``2*C*(R + 2)`` BN affine params.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        *,
        separable: bool = False,
        image_pooling: bool = True,
        dropout: float = 0.1,
        atrous_impl: AtrousImpl = "dilation",
    ) -> None:
        super().__init__()
        rates = _check_rates(rates)
        self.conv1x1 = ConvBNAct(in_channels, out_channels, 1)
        self.atrous = nn.ModuleList(
            _atrous_branch(in_channels, out_channels, r, separable, atrous_impl) for r in rates
        )
        self.pooling = ASPPPooling(in_channels, out_channels) if image_pooling else None
        n_branches = 1 + len(rates) + int(image_pooling)
        self.project = ConvBNAct(n_branches * out_channels, out_channels, 1)
        self.dropout = nn.Dropout(dropout)

    @property
    def rates(self) -> tuple[int, ...]:
        """Current atrous rates of the 3x3 branches."""
        return tuple(_dilated_conv(b).dilation[0] for b in self.atrous)

    def set_rates(self, rates: Sequence[int]) -> None:
        """Change the atrous rates in place (dilation and padding only; weights untouched)."""
        rates = _check_rates(rates)
        if len(rates) != len(self.atrous):
            raise ValueError(
                f"ASPP was built with {len(self.atrous)} atrous rates, got {len(rates)}: {rates}"
            )
        for branch, rate in zip(self.atrous, rates, strict=True):
            conv = _dilated_conv(branch)
            conv.dilation = (rate, rate)
            conv.padding = (same_padding(3, rate),) * 2

    def forward(self, x: Tensor) -> Tensor:
        outs = [self.conv1x1(x), *(branch(x) for branch in self.atrous)]
        if self.pooling is not None:
            outs.append(self.pooling(x))
        return self.dropout(self.project(torch.cat(outs, dim=1)))


def _check_rates(rates: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(r) for r in rates)
    if not out or any(r < 1 or r != float(r0) for r, r0 in zip(out, rates, strict=True)):
        raise ValueError(f"ASPP rates must be positive integers, got {list(rates)!r}")
    return out
