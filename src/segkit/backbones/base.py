"""The backbone contract every head is sized from.

A backbone returns a list of feature maps, one per stage it exposes, and publishes for each a
``segkit.features.FeatureInfo`` in timm's vocabulary: its channels (``num_chs``), its stride
w.r.t. the input (``reduction``: the *actual* stride, so a backbone dilated to output stride 8
reports 8 where it would report 32 undilated), the module it is taken from, and its ``nominal``
stride (the stride it has undilated, which the dilation planner knows). Actual strides are
non-decreasing and the last one is the backbone's *output stride*. Heads pick their inputs by
stride, never by index: by nominal stride when their structure must survive an output-stride
change (FCN skips, the aux head).

A backbone also publishes the RGB ``input_mean`` / ``input_std`` (0..1 units, timm's
``pretrained_cfg`` convention) of the images its pretrained weights expect: a property of the
weights, not of the dataset (timm's ``resolve_data_config``). The Segmentor normalises with them.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

# The rule lives in segkit.checks (shared with the command line's pre-flight check); re-exported here.
from segkit.checks import check_output_stride  # noqa: F401
from segkit.constants import IMAGENET_MEAN, IMAGENET_STD
from segkit.features import FeatureInfo  # the contract, shared with the heads
from segkit.nn.atrous import (
    ATROUS_IMPLS,
    AtrousImpl,
    atrous_impl_of,
    check_atrous_impl,
    set_atrous_impl,
)

OutputStride = Literal[8, 16, 32]


class Backbone(nn.Module):
    """Base class: subclasses fill ``feature_info`` and implement ``forward`` and
    ``set_output_stride``.

    ``forward(x: (B, 3, H, W)) -> list[(B, C_i, ceil(H / s_i), ceil(W / s_i))]`` in ``feature_info``
    order. ``atrous_impls``: the atrous implementations its dilated convs can run
    (``segkit.nn.atrous``); a backbone whose convs are not segkit's (timm) has only "dilation".
    """

    feature_info: list[FeatureInfo]
    atrous_impls: tuple[str, ...] = ATROUS_IMPLS
    #: RGB mean / std (0..1) of the images its weights expect; torchvision's and timm's ImageNet
    #: weights (and so segkit's own backbones) use ImageNet's.
    input_mean: tuple[float, float, float] = IMAGENET_MEAN
    input_std: tuple[float, float, float] = IMAGENET_STD

    @property
    def channels(self) -> list[int]:
        return [f.num_chs for f in self.feature_info]

    @property
    def strides(self) -> list[int]:
        """Actual strides of the returned features."""
        return [f.reduction for f in self.feature_info]

    @property
    def nominal_strides(self) -> list[int]:
        """Strides of the returned features undilated (the same at every output stride)."""
        return [f.nominal for f in self.feature_info]

    @property
    def output_stride(self) -> int:
        return self.feature_info[-1].reduction

    @property
    def atrous_impl(self) -> str:
        """How its dilated convs run: "dilation" or "space_to_batch"."""
        return atrous_impl_of(self)

    def set_atrous_impl(self, impl: AtrousImpl) -> None:
        """Run every atrous conv with ``impl`` (in place; weights and outputs unchanged)."""
        if check_atrous_impl(impl) not in self.atrous_impls:
            raise ValueError(
                f"atrous_impl={impl!r} cannot reach the dilated convs of {type(self).__name__} "
                f"(they are not segkit's AtrousConv2d); use one of {list(self.atrous_impls)}"
            )
        set_atrous_impl(self, impl)

    def set_output_stride(self, output_stride: int) -> None:  # pragma: no cover - abstract
        """Re-dilate in place for a new output stride; weights are untouched."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError
