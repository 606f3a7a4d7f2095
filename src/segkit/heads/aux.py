"""Auxiliary FCN head: deep supervision on the stride-16 feature.

Zhao et al., PSPNet (CVPR 2017), sec. 3.4: an auxiliary loss on an intermediate stage helps optimise
deep backbones; torchvision's segmentation models use the same FCN-style head (3x3 conv-BN-ReLU to
C/4 channels, dropout 0.1, 1x1 classifier). It reads the feature at *nominal* stride 16 (the stage
before the last), so the same weights apply when the backbone is re-dilated.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from segkit.features import FeatureInfo
from segkit.heads.base import HeadBase, conv1x1
from segkit.nn.conv import ConvBNAct


class AuxFCNHead(HeadBase):
    """``forward(features) -> (B, num_classes, h, w)`` at the stride of the nominal stride-16 feature.

    Args:
        feature_info: the backbone's feature contract.
        hidden_channels: width of the 3x3 conv; default ``C / 4`` of the input feature.
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        num_classes: int,
        *,
        hidden_channels: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(feature_info, num_classes)
        self.index = self.index_of(16, what="the auxiliary head", nominal=True)
        if self.index == len(self.strides) - 1:
            raise ValueError(
                f"the auxiliary head needs a stride-16 feature before the last one, but the backbone "
                f"returns nominal strides {list(self.nominal_strides)}; set aux=False"
            )
        channels = self.in_channels[self.index]
        hidden = hidden_channels or max(1, channels // 4)
        self.block = nn.Sequential(
            ConvBNAct(channels, hidden, 3), nn.Dropout(dropout), conv1x1(hidden, num_classes)
        )

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.block(features[self.index])
