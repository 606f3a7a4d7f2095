"""Basic convolution blocks shared by backbones and heads.

`ConvBNAct` is conv -> norm -> activation; `SeparableConv2d` is the depthwise-separable conv of
Xception / MobileNet: a depthwise KxK conv (spatial correlation, one filter per channel) followed by a
pointwise 1x1 conv (channel correlation). Layer types are injectable so ablations stay one argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch import Tensor, nn

from segkit.nn.atrous import AtrousConv2d, AtrousImpl

LayerFactory = Callable[..., nn.Module]
ActBetween = Literal["none", "relu", "elu"]


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps H x W for stride 1: half the effective kernel k + (k-1)(r-1)."""
    return (kernel_size - 1) * dilation // 2


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> norm -> activation. Input (B, C_in, H, W) -> (B, C_out, H', W').

    ``act_layer=None`` gives a linear block (conv + norm only), e.g. a MobileNetV2 projection.
    ``atrous_impl`` picks how a dilated conv runs (``segkit.nn.atrous``); the weights are the same.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
        atrous_impl: AtrousImpl = "dilation",
    ) -> None:
        conv = AtrousConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            dilation=dilation,
            groups=groups,
            impl=atrous_impl,
        )
        layers: list[nn.Module] = [conv, norm_layer(out_channels)]
        if act_layer is not None:
            layers.append(make_layer_act(act_layer))
        super().__init__(*layers)


def _takes_inplace(act_layer: LayerFactory) -> bool:
    return act_layer in (nn.ReLU, nn.ReLU6, nn.ELU, nn.SiLU, nn.Hardswish, nn.LeakyReLU)


def make_layer_act(act_layer: LayerFactory) -> nn.Module:
    # In-place saves one activation-sized buffer per block; it is safe right after a norm layer.
    return act_layer(inplace=True) if _takes_inplace(act_layer) else act_layer()


def make_act(kind: ActBetween) -> nn.Module:
    """Activation between depthwise and pointwise steps (Xception paper, fig. 10)."""
    if kind == "none":
        return nn.Identity()
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "elu":
        return nn.ELU(inplace=True)
    raise ValueError(f"act_between must be 'none', 'relu' or 'elu', got {kind!r}")


class SeparableConv2d(nn.Module):
    """Depthwise KxK conv -> [norm -> act_between] -> pointwise 1x1 conv -> norm [-> act].

    Args:
        act_between: activation between the depthwise and pointwise steps; Chollet found "none" best
            (Xception fig. 10), so that is the default.
        norm_depthwise: add a norm layer right after the depthwise conv (aligned Xception-65 of
            DeepLabv3+ adds BN+ReLU there; combine with ``act_between="relu"``).
        act_layer: activation after the pointwise norm, ``None`` for linear output.
        atrous_impl: how a dilated depthwise conv runs (``segkit.nn.atrous``); same weights.

    Params: C_in*K*K (depthwise) + C_in*C_out (pointwise), versus C_in*C_out*K*K for a full conv.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        dilation: int = 1,
        act_between: ActBetween = "none",
        norm_depthwise: bool = False,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory | None = None,
        atrous_impl: AtrousImpl = "dilation",
    ) -> None:
        super().__init__()
        self.depthwise = AtrousConv2d(
            in_channels,
            in_channels,
            kernel_size,
            stride=stride,
            dilation=dilation,
            groups=in_channels,
            impl=atrous_impl,
        )
        self.norm_dw = norm_layer(in_channels) if norm_depthwise else nn.Identity()
        self.act_dw = make_act(act_between)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.norm = norm_layer(out_channels)
        self.act = nn.Identity() if act_layer is None else make_layer_act(act_layer)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act_dw(self.norm_dw(self.depthwise(x)))
        return self.act(self.norm(self.pointwise(x)))
