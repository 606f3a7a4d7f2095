"""DeepLabv3 head: a context module (ASPP) on the backbone's last feature, then a 1x1 classifier.

Chen, Papandreou, Schroff, Adam, "Rethinking Atrous Convolution for Semantic Image Segmentation",
arXiv:1706.05587 (2017), sec. 3.3. No decoder: the logits are at the output stride and the Segmentor
upsamples them to the input size. The context module and its rate scaling are shared with the
DeepLabv3+ head (``ContextHead``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from segkit.features import FeatureInfo
from segkit.heads.base import HeadBase, conv1x1, scale_rates
from segkit.nn.context import ASPP, PyramidPooling
from segkit.nn.conv import ConvBNAct

Context = Literal["aspp", "pyramid_pooling", "none"]
CONTEXTS: tuple[str, ...] = ("aspp", "pyramid_pooling", "none")


def check_context(context: str) -> str:
    """``context`` itself when it names a context module; ValueError otherwise."""
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {list(CONTEXTS)}, got {context!r}")
    return context


class ContextHead(HeadBase):
    """A head with a context module on the last feature; keeps the ASPP rates in step with the
    output stride (rates given at OS 16, scaled by 16 / output stride)."""

    def build_context(
        self,
        kind: str,
        out_channels: int,
        aspp_rates: Sequence[int],
        *,
        separable: bool,
        dropout: float,
    ) -> nn.Module:
        """``"aspp"`` (DeepLabv3), ``"pyramid_pooling"`` (PSPNet bins 1, 2, 4 fused back to the
        map) or ``"none"`` (a 1x1 conv-BN-ReLU: no context) on ``in_channels[-1]``."""
        self.aspp_rates = tuple(int(r) for r in aspp_rates)
        kind = check_context(kind)
        c_in = self.in_channels[-1]
        if kind == "aspp":
            rates = scale_rates(self.aspp_rates, self.output_stride)
            return ASPP(c_in, out_channels, rates, separable=separable, dropout=dropout)
        if kind == "pyramid_pooling":
            return PyramidPooling(c_in, out_channels, (1, 2, 4), dropout=dropout)
        return ConvBNAct(c_in, out_channels, 1)

    def on_output_stride(self, output_stride: int) -> None:
        """Rescale the ASPP rates (if any) for a re-dilated backbone; weights untouched."""
        context = getattr(self, "context", None)
        if isinstance(context, ASPP):
            context.set_rates(scale_rates(self.aspp_rates, output_stride))


class DeepLabV3Head(ContextHead):
    """``forward(features) -> (B, num_classes, H / os, W / os)`` from ``features[-1]``.

    Args:
        feature_info: the backbone's feature contract; only the last
            feature is used and its stride is the output stride that scales the rates.
        aspp_rates: atrous rates *at output stride 16* (paper: 6, 12, 18); scaled by 16 / output stride.
        aspp_channels: width of every ASPP branch and of its projection (paper: 256).
        separable: depthwise-separable atrous convs in ASPP.
        dropout: dropout after the ASPP projection.
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        num_classes: int,
        *,
        aspp_rates: Sequence[int] = (6, 12, 18),
        aspp_channels: int = 256,
        separable: bool = False,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(feature_info, num_classes)
        self.context = self.build_context(
            "aspp", aspp_channels, aspp_rates, separable=separable, dropout=dropout
        )
        self.classifier = conv1x1(aspp_channels, num_classes)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.classifier(self.context(features[-1]))
