"""MobileNetV2 (Sandler et al. 2018, table 2): inverted residuals with linear bottlenecks.

Module names and order mirror torchvision's ``mobilenet_v2`` (``features.<i>...``), so a torchvision
state dict loads without renaming.

Returned features (nominal strides): 24 ch @ 4 (``features.3``, the DeepLabv3+ low-level feature),
32 @ 8 (``features.6``), 96 @ 16 (``features.13``), 320 @ 32 (``features.17``), at width 1.0.
The default ``final_conv=False`` ends at the 320-channel bottleneck: the setting of the mobile DeepLabv3
models (MobileNetV2 paper, sec. 6.3), where ASPP on 1280 channels would hold most of the model's
parameters (and the default of ``configs/backbone/mobilenetv2.yaml``). ``final_conv=True`` adds the
last 1x1 conv (320 -> 1280, ``features.18``): then ``forward(x)[-1]`` equals torchvision
``model.features(x)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from segkit.backbones.base import Backbone, FeatureInfo, check_output_stride
from segkit.backbones.dilation import (
    multi_grid_rates,
    nominal_strides_out,
    plan_dilation,
    set_conv_geometry,
)
from segkit.backbones.weights import load_backbone_weights
from segkit.nn.atrous import AtrousImpl
from segkit.nn.conv import ConvBNAct, LayerFactory, make_layer_act

# Paper table 2: expansion t, output channels c, repeats n, first stride s.
MOBILENETV2_CFG: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10% below ``value`` (as the
    reference implementation does, so width-multiplied models match torchvision)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection [+ input].

    ``linear_bottleneck=False`` appends ``act_layer`` after the projection norm: the ablation of the
    paper's section 3.2 (ReLU in a low-dimensional space destroys information).
    Input (B, C_in, H, W) -> (B, C_out, H / stride, W / stride).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int,
        expand_ratio: int,
        linear_bottleneck: bool = True,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU6,
    ) -> None:
        super().__init__()
        hidden = round(in_channels * expand_ratio)
        # Decided from the nominal stride: dilating a block later must not change its topology.
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(
                ConvBNAct(in_channels, hidden, 1, norm_layer=norm_layer, act_layer=act_layer)
            )
        self._dw_index = len(layers)
        layers.append(
            ConvBNAct(
                hidden,
                hidden,
                3,
                stride=stride,
                groups=hidden,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
        )
        layers += [nn.Conv2d(hidden, out_channels, 1, bias=False), norm_layer(out_channels)]
        if not linear_bottleneck:
            layers.append(make_layer_act(act_layer))
        self.conv = nn.Sequential(*layers)

    @property
    def depthwise(self) -> nn.Conv2d:
        return self.conv[self._dw_index][0]

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(Backbone):
    """MobileNetV2 feature extractor at output stride 8, 16 or 32. Input (B, 3, H, W).

    ``weights``: None, ``"torchvision:<WEIGHTS_ENUM>"`` or a local file with a torchvision
    ``mobilenet_v2`` state dict (see ``segkit.backbones.weights``). ``atrous_impl``: how the dilated
    depthwise convs run (``segkit.nn.atrous``; a model's heads follow it).
    """

    def __init__(
        self,
        *,
        output_stride: int = 16,
        weights: str | None = None,
        width_mult: float = 1.0,
        linear_bottleneck: bool = True,
        multi_grid: Sequence[int] | None = None,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU6,
        atrous_impl: AtrousImpl = "dilation",
        final_conv: bool = False,
    ) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be > 0, got {width_mult}")
        c_in = make_divisible(32 * width_mult)
        layers: list[nn.Module] = [
            ConvBNAct(3, c_in, 3, stride=2, norm_layer=norm_layer, act_layer=act_layer)
        ]
        self._unit_strides: list[int] = []
        for t, c, n, s in MOBILENETV2_CFG:
            c_out = make_divisible(c * width_mult)
            for i in range(n):
                stride = s if i == 0 else 1
                layers.append(
                    InvertedResidual(
                        c_in,
                        c_out,
                        stride=stride,
                        expand_ratio=t,
                        linear_bottleneck=linear_bottleneck,
                        norm_layer=norm_layer,
                        act_layer=act_layer,
                    )
                )
                self._unit_strides.append(stride)
                c_in = c_out
        if final_conv:
            last = make_divisible(1280 * max(1.0, width_mult))
            layers.append(ConvBNAct(c_in, last, 1, norm_layer=norm_layer, act_layer=act_layer))
        #: Reference (torchvision) keys this model does not build; the weight loader skips them.
        self.unused_reference_prefixes: tuple[str, ...] = (
            () if final_conv else (f"features.{len(layers)}.",)
        )
        self.features = nn.Sequential(*layers)
        self._taps = self._tap_indices()
        self._tap_set = frozenset(self._taps)
        self.multi_grid = tuple(multi_grid) if multi_grid else (1,)
        self.set_output_stride(output_stride)
        self.set_atrous_impl(atrous_impl)
        load_backbone_weights(self, weights, arch="mobilenetv2")

    def _tap_indices(self) -> list[int]:
        """``features`` indices whose output is returned: the last unit before each stride-2 unit
        (from nominal stride 4 on) and the last layer."""
        strides = [2, *self._unit_strides]  # index 0 is the stem
        taps, running = [], 1
        for i, s in enumerate(strides):
            running *= s
            if i + 1 < len(strides) and strides[i + 1] == 2 and running >= 4:
                taps.append(i)
        return [*taps, len(self.features) - 1]

    def set_output_stride(self, output_stride: int) -> None:
        """Re-dilate the depthwise convs in place (weights untouched) and update ``feature_info``."""
        check_output_stride(output_stride)
        plan = plan_dilation(self._unit_strides, output_stride, input_stride=2)
        last_stage = max(i for i, s in enumerate(self._unit_strides) if s > 1)
        rates = multi_grid_rates(self.multi_grid, len(plan) - last_stage)
        for i, geom in enumerate(plan):
            rate = rates[i - last_stage] if i >= last_stage else 1
            set_conv_geometry(self.features[i + 1].depthwise, geom.stride, geom.dilation * rate)
        out_strides = [2] + [g.stride_out for g in plan] + [plan[-1].stride_out]  # stem, units, 1x1
        nominal = [2, *nominal_strides_out(self._unit_strides, input_stride=2)]
        nominal.append(nominal[-1])
        self.feature_info = [
            FeatureInfo(
                _out_channels(self.features[i]), out_strides[i], f"features.{i}", nominal[i]
            )
            for i in self._taps
        ]

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> features as in ``feature_info``; the last is the output."""
        feats = []
        taps = self._tap_set
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in taps:
                feats.append(x)
        return feats


def _out_channels(module: nn.Module) -> int:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


#: The builder ``configs/backbone/mobilenetv2.yaml`` targets: the class itself (its signature is
#: the config schema).
mobilenetv2 = MobileNetV2
