"""A tiny backbone that honours the Backbone contract, to test heads and models in isolation.

`from helpers.fake_backbone import FakeBackbone`.
"""

from __future__ import annotations

from torch import Tensor, nn

from segkit.backbones.base import Backbone, FeatureInfo, check_output_stride


class FakeBackbone(Backbone):
    """Stem (stride 2) + four stride-2 conv stages returning features at nominal strides 4, 8, 16, 32.

    ``set_output_stride`` turns the strides that would pass the target into dilation (the striding
    stage keeps the previous rate, later stages get the multiplied one), like the real backbones.
    """

    def __init__(self, *, output_stride: int = 16, channels: tuple[int, ...] = (8, 12, 16, 24)):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        widths = (8, *channels)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())
            for a, b in zip(widths, widths[1:], strict=False)
        )
        self.set_output_stride(output_stride)

    def set_output_stride(self, output_stride: int) -> None:
        output_stride = check_output_stride(output_stride)
        stride, dilation, info = 2, 1, []
        for i, stage in enumerate(self.stages):
            conv = stage[0]
            if stride * 2 > output_stride:
                conv.stride, conv.dilation, conv.padding = (1, 1), (dilation,) * 2, (dilation,) * 2
                dilation *= 2
            else:
                conv.stride, conv.dilation, conv.padding = (2, 2), (1, 1), (1, 1)
                stride *= 2
            info.append(FeatureInfo(conv.out_channels, stride, f"stages.{i}", 2 ** (i + 2)))
        self.feature_info = info

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats
