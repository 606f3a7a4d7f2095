"""DeepLabv3+ head: a context module on the last feature, and a decoder fusing the stride-4 feature.

Chen, Zhu, Papandreou, Schroff, Adam, "Encoder-Decoder with Atrous Separable Convolution for Semantic
Image Segmentation", ECCV 2018, sec. 3.1 and fig. 2: the encoder output (ASPP, 256 channels) is
upsampled bilinearly to stride 4 and concatenated with the stride-4 low-level feature projected by a
1x1 conv to 48 channels; two 3x3 convs with 256 channels refine it, a 1x1 conv classifies, and the
Segmentor upsamples x4 to the input size. ``separable=True`` makes the ASPP and decoder 3x3 convs
depthwise-separable (sec. 3.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segkit.heads.base import conv1x1, feature_index, scale_rates
from segkit.nn.context import ASPP, PyramidPooling
from segkit.nn.conv import ConvBNAct, SeparableConv2d

Context = Literal["aspp", "spp", "none"]
CONTEXTS: tuple[str, ...] = ("aspp", "spp", "none")


def conv3x3_bn_relu(in_channels: int, out_channels: int, *, separable: bool) -> nn.Module:
    """3x3 conv-BN-ReLU, or its depthwise-separable version (BN + ReLU after both steps)."""
    if separable:
        return SeparableConv2d(
            in_channels,
            out_channels,
            3,
            act_between="relu",
            norm_depthwise=True,
            act_layer=nn.ReLU,
        )
    return ConvBNAct(in_channels, out_channels, 3)


class DeepLabV3PlusHead(nn.Module):
    """``forward(features) -> (B, num_classes, H / 4, W / 4)`` logits at the low-level stride.

    Args:
        in_channels, strides: the backbone's feature contract. The low-level input is the feature with
            stride 4; the context module runs on the last feature.
        aspp_rates: atrous rates at output stride 16 (6, 12, 18), scaled by 16 / output stride.
        aspp_channels: width of the context module's output (256).
        separable: depthwise-separable 3x3 convs in ASPP and decoder.
        context: ``"aspp"`` (DeepLabv3), ``"spp"`` (pyramid pooling, bins 1, 2, 4, fused back to the
            map) or ``"none"`` (a 1x1 conv-BN-ReLU to ``aspp_channels``: the decoder alone).
        low_level_channels: width of the 1x1 projection of the stride-4 feature (48 in the paper).
        decoder_channels: width of the two 3x3 decoder convs (256).
        dropout: dropout after the context projection.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        strides: Sequence[int],
        num_classes: int,
        *,
        aspp_rates: Sequence[int] = (6, 12, 18),
        aspp_channels: int = 256,
        separable: bool = False,
        context: Context = "aspp",
        low_level_channels: int = 48,
        decoder_channels: int = 256,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.aspp_rates = tuple(int(r) for r in aspp_rates)
        self.low_index = feature_index(
            strides, 4, what="the DeepLabv3+ decoder (low-level feature)"
        )
        self.context = _build_context(
            context,
            in_channels[-1],
            aspp_channels,
            scale_rates(self.aspp_rates, strides[-1]) if context == "aspp" else (),
            separable=separable,
            dropout=dropout,
        )
        self.low_level = ConvBNAct(in_channels[self.low_index], low_level_channels, 1)
        self.decoder = nn.Sequential(
            conv3x3_bn_relu(
                aspp_channels + low_level_channels, decoder_channels, separable=separable
            ),
            conv3x3_bn_relu(decoder_channels, decoder_channels, separable=separable),
        )
        self.classifier = conv1x1(decoder_channels, num_classes)

    def set_output_stride(self, output_stride: int) -> None:
        """Rescale the ASPP rates (if any) for a re-dilated backbone; weights untouched."""
        if isinstance(self.context, ASPP):
            self.context.set_rates(scale_rates(self.aspp_rates, output_stride))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        low = self.low_level(features[self.low_index])
        x = self.context(features[-1])
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.decoder(torch.cat([x, low], dim=1)))


def _build_context(
    kind: str,
    in_channels: int,
    out_channels: int,
    rates: Sequence[int],
    *,
    separable: bool,
    dropout: float,
) -> nn.Module:
    if kind == "aspp":
        return ASPP(in_channels, out_channels, rates, separable=separable, dropout=dropout)
    if kind == "spp":
        return PyramidPooling(in_channels, out_channels, (1, 2, 4), dropout=dropout)
    if kind == "none":
        return ConvBNAct(in_channels, out_channels, 1)
    raise ValueError(f"model.context must be one of {list(CONTEXTS)}, got {kind!r}")
