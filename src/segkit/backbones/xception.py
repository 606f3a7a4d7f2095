"""Xception (Chollet 2017, fig. 5): entry flow, middle flow x8, exit flow, with max-pooling.

Layout and channel counts follow the Keras model as ported to timm's ``legacy_xception`` (valid-padded
stem convs, ReLU before each separable conv, BN after it, 3x3/2 max-pool closing each strided block,
1x1/2 conv+BN shortcut), so its state dict loads through ``segkit.backbones.weights`` and
``forward(x)[-1]`` equals timm ``forward_features(x)`` at output stride 32.

Below output stride 32 the pool of the block that would exceed the target gets stride 1 and later
convs and pools are dilated ("dilated pooling"). ``act_between`` is the fig. 10 switch (activation
between depthwise and pointwise step; "none" is Chollet's choice and the reference weights').

Returned features (nominal strides): 128 @ 4 (block 1), 256 @ 8 (block 2), 728 @ 16 (block 11),
2048 @ 32 (exit flow).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from segkit.backbones.base import Backbone, FeatureInfo, check_output_stride
from segkit.backbones.dilation import (
    multi_grid_rates,
    nominal_strides_out,
    plan_dilation,
    set_conv_geometry,
    set_pool_geometry,
)
from segkit.backbones.weights import load_backbone_weights
from segkit.constants import INCEPTION_MEAN, INCEPTION_STD
from segkit.nn.atrous import AtrousImpl
from segkit.nn.conv import ActBetween, ConvBNAct, LayerFactory, SeparableConv2d, make_act
from segkit.nn.pool import DilatedMaxPool2d


class XceptionBlock(nn.Module):
    """``reps`` x (ReLU -> separable conv -> BN) [-> 3x3 max-pool / stride] + shortcut.

    Input (B, C_in, H, W) -> (B, C_out, H / stride, W / stride).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        reps: int,
        stride: int = 1,
        start_with_relu: bool = True,
        grow_first: bool = True,
        act_between: ActBetween = "none",
        norm_layer: LayerFactory = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.start_with_relu = start_with_relu
        chans = []
        for i in range(reps):
            if grow_first:
                chans.append((in_channels if i == 0 else out_channels, out_channels))
            else:
                chans.append((in_channels, in_channels if i < reps - 1 else out_channels))
        self.convs = nn.ModuleList(
            SeparableConv2d(c_in, c_out, 3, act_between=act_between, norm_layer=norm_layer)
            for c_in, c_out in chans
        )
        self.pool = DilatedMaxPool2d(3, stride=stride) if stride != 1 else None
        self.skip = None
        if out_channels != in_channels or stride != 1:
            self.skip = ConvBNAct(
                in_channels, out_channels, 1, stride=stride, norm_layer=norm_layer, act_layer=None
            )

    def set_geometry(self, stride: int, dilation: int) -> None:
        """Dilate the separable convs and the pool, move the stride (pool and shortcut)."""
        for conv in self.convs:
            set_conv_geometry(conv.depthwise, 1, dilation)
        if self.pool is not None:
            set_pool_geometry(self.pool, stride, dilation)
        if self.skip is not None:
            set_conv_geometry(self.skip[0], stride, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            if i > 0 or self.start_with_relu:
                # Not in place on the block input: the shortcut still needs it.
                h = F.relu(h, inplace=i > 0)
            h = conv(h)
        if self.pool is not None:
            h = self.pool(h)
        return h + (x if self.skip is None else self.skip(x))


class Xception(Backbone):
    """Chollet's Xception feature extractor at output stride 8, 16 or 32. Input (B, 3, H, W).

    ``weights``: None, ``"timm:legacy_xception.tf_in1k"`` or a local file with a timm
    ``legacy_xception`` state dict (see ``segkit.backbones.weights``).
    """

    # its reference weights (timm's tf_in1k ports of the TensorFlow models) expect [-1, 1] input
    input_mean = INCEPTION_MEAN
    input_std = INCEPTION_STD

    def __init__(
        self,
        *,
        output_stride: int = 16,
        weights: str | None = None,
        middle_blocks: int = 8,
        act_between: ActBetween = "none",
        multi_grid: Sequence[int] | None = None,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        atrous_impl: AtrousImpl = "dilation",
    ) -> None:
        super().__init__()
        make_act(act_between)  # validates the switch before building anything
        if middle_blocks < 1:
            raise ValueError(f"middle_blocks must be >= 1, got {middle_blocks}")
        self.stem = nn.Sequential(
            ConvBNAct(3, 32, 3, stride=2, norm_layer=norm_layer),
            ConvBNAct(32, 64, 3, norm_layer=norm_layer),
        )
        # Keras' Xception stem convs are 'valid' (no padding); the reference weights assume it.
        for conv_bn_act in self.stem:
            conv_bn_act[0].padding = (0, 0)
        sep = {"act_between": act_between, "norm_layer": norm_layer}
        blocks = [
            XceptionBlock(64, 128, reps=2, stride=2, start_with_relu=False, **sep),
            XceptionBlock(128, 256, reps=2, stride=2, **sep),
            XceptionBlock(256, 728, reps=2, stride=2, **sep),
            *(XceptionBlock(728, 728, reps=3, **sep) for _ in range(middle_blocks)),
            XceptionBlock(728, 1024, reps=2, stride=2, grow_first=False, **sep),
        ]
        self.blocks = nn.Sequential(*blocks)
        relu = nn.ReLU
        self.exit = nn.Sequential(
            SeparableConv2d(1024, 1536, 3, act_layer=relu, **sep),
            SeparableConv2d(1536, 2048, 3, act_layer=relu, **sep),
        )
        self._unit_strides = [2, 2, 2, *([1] * middle_blocks), 2, 1, 1]
        # Features: after block 1 (stride 4), block 2 (8), the last middle block (16), exit flow (32).
        self._taps = [0, 1, 2 + middle_blocks, len(self._unit_strides) - 1]
        self.multi_grid = tuple(multi_grid) if multi_grid else (1,)
        self.set_output_stride(output_stride)
        self.set_atrous_impl(atrous_impl)
        load_backbone_weights(self, weights, arch="xception")

    def _units(self) -> list[nn.Module]:
        return [*self.blocks, *self.exit]

    def set_output_stride(self, output_stride: int) -> None:
        """Re-dilate convs and pools in place (weights untouched) and update ``feature_info``.

        ``multi_grid`` rates apply to the two exit-flow separable convs (after the last pool).
        """
        check_output_stride(output_stride)
        plan = plan_dilation(self._unit_strides, output_stride, input_stride=2)
        units = self._units()
        n_exit = len(self.exit)
        rates = multi_grid_rates(self.multi_grid, n_exit)
        for i, (unit, geom) in enumerate(zip(units, plan, strict=True)):
            if isinstance(unit, XceptionBlock):
                unit.set_geometry(geom.stride, geom.dilation)
            else:
                rate = rates[i - (len(units) - n_exit)]
                set_conv_geometry(unit.depthwise, geom.stride, geom.dilation * rate)
        channels = [128, 256, 728, 2048]
        n_blocks = len(self.blocks)
        names = [f"blocks.{i}" if i < n_blocks else f"exit.{i - n_blocks}" for i in self._taps]
        nominal = nominal_strides_out(self._unit_strides, input_stride=2)
        self.feature_info = [
            FeatureInfo(c, plan[i].stride_out, name, nominal[i])
            for c, i, name in zip(channels, self._taps, names, strict=True)
        ]

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> features as in ``feature_info``; the last is the output."""
        x = self.stem(x)
        feats = []
        taps = self._taps
        for i, unit in enumerate(self._units()):
            x = unit(x)
            if i in taps:
                feats.append(x)
        return feats


#: The builder ``configs/backbone/xception.yaml`` targets (the class: its signature is the schema).
xception = Xception
