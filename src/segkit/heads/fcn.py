"""FCN-32s / 16s / 8s heads.

Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015, sec. 4.2
and fig. 3: a 1x1 score layer on the stride-32 feature; FCN-16s adds a score layer on the stride-16
feature (zero-initialised, so training starts from the coarser net) after a x2 transposed-conv
upsampling initialised as bilinear interpolation; FCN-8s repeats this with the stride-8 feature.
Fusion is by addition; the Segmentor upsamples the result to the input size.

Variant ``Ns`` predicts at stride N. Its structure (which features get a score layer) is fixed by the
*nominal* strides 32, 16, 8, so it survives an output-stride change: with a dilated backbone two
fused scores can share a stride, and the x2 upsampling between them is skipped. A variant is possible
only when the output stride is at least N: at output stride 8 the coarsest score is already at stride
8, so FCN-16s/32s cannot exist there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

# The variant rule lives in segkit.checks (shared with the command line's pre-flight check).
from segkit.checks import FCN_VARIANTS, check_fcn_variant  # noqa: F401 (FCN_VARIANTS re-exported)
from segkit.features import FeatureInfo
from segkit.heads.base import HeadBase, conv1x1
from segkit.nn.upsample import BilinearConvTranspose2d

FCNVariant = Literal["32s", "16s", "8s"]


class FCNHead(HeadBase):
    """``forward(features) -> (B, num_classes, H / N, W / N)`` for variant ``Ns``.

    Args:
        feature_info: the backbone's feature contract. The last feature
            gets the coarse score layer; the skips are the features at nominal strides 16 (16s, 8s)
            and 8 (8s).
        fcn_variant: ``"32s"``, ``"16s"`` or ``"8s"``.
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        num_classes: int,
        *,
        fcn_variant: FCNVariant = "8s",
    ) -> None:
        super().__init__(feature_info, num_classes)
        self.variant = fcn_variant
        self.prediction_stride = check_fcn_variant(fcn_variant, self.output_stride)
        self.skip_indices = [
            self.index_of(s, what=f"FCN-{fcn_variant} (skip)", nominal=True)
            for s in (16, 8)
            if s >= self.prediction_stride
        ]
        self.score = conv1x1(self.in_channels[-1], num_classes)
        self.score_skips = nn.ModuleList(
            conv1x1(self.in_channels[i], num_classes, zero_init=True) for i in self.skip_indices
        )
        self.upsamples = nn.ModuleList(
            BilinearConvTranspose2d(num_classes, 2) for _ in self.skip_indices
        )
        self._freeze_skipped_upsamples(self.strides)

    def on_output_stride(self, output_stride: int) -> None:
        """Refuse a variant impossible at ``output_stride``; freeze the upsamplers it skips."""
        check_fcn_variant(self.variant, output_stride)
        self._freeze_skipped_upsamples([min(s, output_stride) for s in self.nominal_strides])

    def _freeze_skipped_upsamples(self, strides: Sequence[int]) -> None:
        # An upsampler between two scores at the same stride is skipped; freeze it so that it is not
        # an unused parameter (DDP without find_unused_parameters would fail) yet stays in the
        # state dict, keeping checkpoints interchangeable across output strides.
        coarse = strides[-1]
        for i, up in zip(self.skip_indices, self.upsamples, strict=True):
            up.requires_grad_(strides[i] < coarse)
            coarse = strides[i]

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        score = self.score(features[-1])
        stride = self.strides[-1]
        for i, score_skip, up in zip(
            self.skip_indices, self.score_skips, self.upsamples, strict=True
        ):
            skip = score_skip(features[i])
            if self.strides[i] < stride:  # x2: nominal skips halve the stride each step
                score = _fit(up(score), skip.shape[-2:])
            score = score + skip
            stride = self.strides[i]
        return score


def _fit(x: Tensor, size: Sequence[int]) -> Tensor:
    """Crop (or zero-pad at the bottom/right) ``x`` to ``size``.

    Backbones with 'same' padding give ceil(n / s) sized features, and 2 * ceil(n / 2s) >= ceil(n / s):
    the upsampled score has at most one extra row/column, which lies past the image (FCN's crop).
    Valid-padded backbones can be one short instead; the missing border row then scores zero.
    """
    # One F.pad: a negative amount crops, a positive one pads; no branch on the sizes, so tracing
    # (ONNX export) records it for every input size without a TracerWarning.
    h, w = x.shape[-2:]
    return F.pad(x, (0, size[1] - w, 0, size[0] - h))
