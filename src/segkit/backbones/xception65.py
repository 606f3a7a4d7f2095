"""Aligned Xception (DeepLabv3+, Chen et al. 2018, fig. 4): Xception-65 and its 41/71-deep kin.

Changes from Chollet's Xception: a deeper middle flow (16 blocks), every max-pool replaced by a
strided separable conv (so any stride can become a dilation), and BN after each depthwise conv.
Layout, channel counts and BN eps (1e-3) follow the TF DeepLab model as ported to timm's
``xception65``: each separable conv of a block is preceded by a ReLU and has BN after the depthwise and
after the pointwise step; the last exit block has no shortcut and puts ReLU after both BNs instead.
A timm ``xception65`` state dict loads through ``segkit.backbones.weights`` and ``forward(x)[-1]`` equals
timm ``forward_features(x)`` (at output stride 8, 16 and 32: the dilation plan is the same).

Switches: ``middle_blocks`` (16 = Xception-65; 8 = exactly timm's Xception-41; other depths are
"65-like with N middle blocks": Xception-71 also deepens the entry flow, which this switch does not),
``act_between`` ("none" = the reference; "relu" = BN+ReLU after every depthwise conv as the paper's
text describes), ``multi_grid`` (unit rates of the last block's three separable convs, DeepLabv3).

Returned features, as DeepLab taps them (input of the strided conv of a block, after its ReLU):
256 @ 4 (entry block 2, the decoder's low-level feature), 728 @ 8 (entry block 3), 1024 @ 16 (exit
block 1), 2048 @ 32 (exit flow output).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch.nn.functional as F
from torch import Tensor, nn

from segkit.backbones.base import Backbone, FeatureInfo, check_output_stride
from segkit.backbones.dilation import (
    multi_grid_rates,
    nominal_strides_out,
    plan_dilation,
    set_conv_geometry,
)
from segkit.backbones.weights import load_backbone_weights
from segkit.constants import INCEPTION_MEAN, INCEPTION_STD
from segkit.nn.atrous import AtrousImpl
from segkit.nn.conv import ActBetween, ConvBNAct, LayerFactory, SeparableConv2d, make_act

TF_BATCHNORM = partial(nn.BatchNorm2d, eps=1e-3)


class XceptionModule(nn.Module):
    """Three separable convs (the third strided) + 1x1 conv/BN shortcut.

    ``start_with_relu``: ReLU before each separable conv and none inside it except ``act_between``;
    otherwise (last exit block) each separable conv is depthwise-BN-ReLU-pointwise-BN-ReLU.
    ``forward`` returns ``(out, tap)``: the block output (B, C_out, H/s, W/s) and the input of the
    strided conv (B, C_2, H, W), DeepLab's feature tap.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: Sequence[int],
        *,
        stride: int = 1,
        start_with_relu: bool = True,
        shortcut: bool = True,
        act_between: ActBetween = "none",
        norm_layer: LayerFactory = TF_BATCHNORM,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        self.start_with_relu = start_with_relu
        self.out_channels = out_channels[-1]
        c_in = in_channels
        convs = []
        for i, c_out in enumerate(out_channels):
            convs.append(
                SeparableConv2d(
                    c_in,
                    c_out,
                    3,
                    stride=stride if i == 2 else 1,
                    norm_depthwise=True,
                    act_between=act_between if start_with_relu else "relu",
                    norm_layer=norm_layer,
                    act_layer=None if start_with_relu else act_layer,
                )
            )
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.shortcut = None
        if shortcut and (self.out_channels != in_channels or stride != 1):
            self.shortcut = ConvBNAct(
                in_channels,
                self.out_channels,
                1,
                stride=stride,
                norm_layer=norm_layer,
                act_layer=None,
            )
        self.use_shortcut = shortcut

    def set_geometry(self, stride: int, dilations: Sequence[int]) -> None:
        """Stride of the third conv and shortcut; one dilation per separable conv."""
        for i, (conv, rate) in enumerate(zip(self.convs, dilations, strict=True)):
            set_conv_geometry(conv.depthwise, stride if i == 2 else 1, rate)
        if self.shortcut is not None:
            set_conv_geometry(self.shortcut[0], stride, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = tap = x
        for i, conv in enumerate(self.convs):
            if self.start_with_relu:
                # The first ReLU must not overwrite the block input: the shortcut reads it.
                h = F.relu(h, inplace=i > 0)
            if i == 2:
                tap = h
            h = conv(h)
        if self.use_shortcut:
            h = h + (x if self.shortcut is None else self.shortcut(x))
        return h, tap


class XceptionAligned(Backbone):
    """Aligned Xception feature extractor at output stride 8, 16 or 32. Input (B, 3, H, W).

    ``weights``: None, ``"timm:xception65.tf_in1k"`` or a local file with a timm ``xception65``
    state dict (see ``segkit.backbones.weights``).
    """

    # its reference weights (timm's tf_in1k ports of the TensorFlow models) expect [-1, 1] input
    input_mean = INCEPTION_MEAN
    input_std = INCEPTION_STD

    def __init__(
        self,
        *,
        output_stride: int = 16,
        weights: str | None = None,
        middle_blocks: int = 16,
        act_between: ActBetween = "none",
        multi_grid: Sequence[int] | None = None,
        norm_layer: LayerFactory = TF_BATCHNORM,
        act_layer: LayerFactory = nn.ReLU,
        atrous_impl: AtrousImpl = "dilation",
    ) -> None:
        super().__init__()
        make_act(act_between)  # validates the switch before building anything
        if middle_blocks < 1:
            raise ValueError(f"middle_blocks must be >= 1, got {middle_blocks}")
        layer = {"norm_layer": norm_layer, "act_layer": act_layer}
        self.stem = nn.Sequential(
            ConvBNAct(3, 32, 3, stride=2, **layer), ConvBNAct(32, 64, 3, **layer)
        )
        mod = {"act_between": act_between, **layer}
        blocks = [
            XceptionModule(64, (128,) * 3, stride=2, **mod),
            XceptionModule(128, (256,) * 3, stride=2, **mod),
            XceptionModule(256, (728,) * 3, stride=2, **mod),
            *(XceptionModule(728, (728,) * 3, **mod) for _ in range(middle_blocks)),
            XceptionModule(728, (728, 1024, 1024), stride=2, **mod),
            XceptionModule(1024, (1536, 1536, 2048), start_with_relu=False, shortcut=False, **mod),
        ]
        self.blocks = nn.Sequential(*blocks)
        self._unit_strides = [2, 2, 2, *([1] * middle_blocks), 2, 1]
        n = len(blocks)
        # (block index, take the in-block tap?) for strides 4, 8, 16, 32.
        self._taps = {1: 0, 2: 1, n - 2: 2}
        self._channels = [256, 728, 1024, 2048]
        self.multi_grid = tuple(multi_grid) if multi_grid else (1,)
        self.set_output_stride(output_stride)
        self.set_atrous_impl(atrous_impl)
        load_backbone_weights(self, weights, arch="xception65")

    def set_output_stride(self, output_stride: int) -> None:
        """Re-dilate the depthwise convs in place (weights untouched) and update ``feature_info``."""
        check_output_stride(output_stride)
        plan = plan_dilation(self._unit_strides, output_stride, input_stride=2)
        last = len(plan) - 1
        for i, (block, geom) in enumerate(zip(self.blocks, plan, strict=True)):
            grid = multi_grid_rates(self.multi_grid, 3) if i == last else [1, 1, 1]
            block.set_geometry(geom.stride, [geom.dilation * g for g in grid])
        # A tap sits before the block's strided conv, so at the block's input stride.
        strides = [plan[i].stride_in for i in self._taps] + [plan[-1].stride_out]
        nominal_out = nominal_strides_out(self._unit_strides, input_stride=2)
        nominal = [nominal_out[i - 1] for i in self._taps] + [nominal_out[-1]]
        names = [f"blocks.{i}.tap" for i in self._taps] + [f"blocks.{last}"]
        self.feature_info = [
            FeatureInfo(c, s, name, n)
            for c, s, name, n in zip(self._channels, strides, names, nominal, strict=True)
        ]

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> features as in ``feature_info``; the last is the output."""
        x = self.stem(x)
        feats = []
        taps = self._taps
        for i, block in enumerate(self.blocks):
            x, tap = block(x)
            if i in taps:
                feats.append(tap)
        feats.append(x)
        return feats


#: The builder ``configs/backbone/xception65.yaml`` targets (the class: its signature is the schema).
xception65 = XceptionAligned
