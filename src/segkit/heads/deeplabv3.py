"""DeepLabv3 head: ASPP on the backbone's last feature, then a 1x1 classifier.

Chen, Papandreou, Schroff, Adam, "Rethinking Atrous Convolution for Semantic Image Segmentation",
arXiv:1706.05587 (2017), sec. 3.3. No decoder: the logits are at the output stride and the Segmentor
upsamples them to the input size.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from segkit.heads.base import conv1x1, scale_rates
from segkit.nn.context import ASPP


class DeepLabV3Head(nn.Module):
    """``forward(features) -> (B, num_classes, H / os, W / os)`` from ``features[-1]``.

    Args:
        in_channels, strides: the backbone's feature contract; only the last feature is used and its
            stride is the output stride that scales the rates.
        aspp_rates: atrous rates *at output stride 16* (paper: 6, 12, 18); scaled by 16 / output stride.
        aspp_channels: width of every ASPP branch and of its projection (paper: 256).
        separable: depthwise-separable atrous convs in ASPP.
        dropout: dropout after the ASPP projection.
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
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.aspp_rates = tuple(int(r) for r in aspp_rates)
        self.context = ASPP(
            in_channels[-1],
            aspp_channels,
            scale_rates(self.aspp_rates, strides[-1]),
            separable=separable,
            dropout=dropout,
        )
        self.classifier = conv1x1(aspp_channels, num_classes)

    def set_output_stride(self, output_stride: int) -> None:
        """Rescale the ASPP rates for a backbone re-dilated to ``output_stride`` (weights untouched)."""
        self.context.set_rates(scale_rates(self.aspp_rates, output_stride))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.classifier(self.context(features[-1]))
