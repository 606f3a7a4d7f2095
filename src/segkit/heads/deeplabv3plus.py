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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segkit.features import FeatureInfo
from segkit.heads.base import conv1x1
from segkit.heads.deeplabv3 import Context, ContextHead
from segkit.nn.conv import ConvBNAct, SeparableConv2d


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


class DeepLabV3PlusHead(ContextHead):
    """``forward(features) -> (B, num_classes, H / 4, W / 4)`` logits at the low-level stride.

    Args:
        feature_info: the backbone's feature contract. The low-level
            input is the feature with stride 4; the context module runs on the last feature.
        aspp_rates: atrous rates at output stride 16 (6, 12, 18), scaled by 16 / output stride.
        aspp_channels: width of the context module's output (256).
        separable: depthwise-separable 3x3 convs in ASPP and decoder.
        context: ``"aspp"`` (DeepLabv3), ``"pyramid_pooling"`` (PSPNet's pyramid pooling, bins 1, 2,
            4, fused back to the map) or ``"none"`` (a 1x1
            conv-BN-ReLU to ``aspp_channels``: the decoder alone).
        low_level_channels: width of the 1x1 projection of the stride-4 feature (48 in the paper).
        decoder_channels: width of the two 3x3 decoder convs (256).
        dropout: dropout after the context projection.
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
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
        super().__init__(feature_info, num_classes)
        self.low_index = self.index_of(4, what="the DeepLabv3+ decoder (low-level feature)")
        self.context = self.build_context(
            context, aspp_channels, aspp_rates, separable=separable, dropout=dropout
        )
        self.low_level = ConvBNAct(self.in_channels[self.low_index], low_level_channels, 1)
        self.decoder = nn.Sequential(
            conv3x3_bn_relu(
                aspp_channels + low_level_channels, decoder_channels, separable=separable
            ),
            conv3x3_bn_relu(decoder_channels, decoder_channels, separable=separable),
        )
        self.classifier = conv1x1(decoder_channels, num_classes)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        low = self.low_level(features[self.low_index])
        x = self.context(features[-1])
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.decoder(torch.cat([x, low], dim=1)))
