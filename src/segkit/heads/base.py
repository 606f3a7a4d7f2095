"""The head contract, and what every head shares: inputs by stride, atrous rates by output stride.

A head is built from the backbone's feature contract, its ``feature_info``
(``segkit.features.FeatureInfo``): the channels ``num_chs``, the *actual* stride ``reduction`` and
the *nominal* (undilated) stride ``nominal`` of each returned feature. A backbone dilated to output
stride 8 reports actual strides ``[4, 8, 8, 8]`` and nominal ``[4, 8, 16, 32]``. Heads that must keep
their structure when the output stride changes (FCN skips, the aux head) pick features by nominal
stride; the nominal strides come from the backbone, never from a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from segkit.checks import check_output_stride
from segkit.features import FeatureInfo

#: The output stride at which the paper's ASPP rates (6, 12, 18) are given.
REFERENCE_OUTPUT_STRIDE = 16


@runtime_checkable
class Head(Protocol):
    """What a Segmentor needs of a head: built as ``Head(feature_info, num_classes, *, ...)`` from
    the backbone's ``feature_info``, it holds the contract it was sized from (channels and strides
    per feature) and follows an output-stride change of its backbone in place.

    ``forward(features: list[(B, C_i, H / s_i, W / s_i)]) -> (B, num_classes, h, w)`` logits.
    """

    in_channels: tuple[int, ...]
    strides: tuple[int, ...]  # actual strides of the features, at the current output stride
    num_classes: int

    def set_output_stride(self, output_stride: int) -> None: ...

    def __call__(self, features: Sequence[Tensor]) -> Tensor: ...


class HeadBase(nn.Module):
    """Stores the feature contract and keeps ``strides`` in step with the output stride;
    subclasses react to a change in :meth:`on_output_stride`."""

    def __init__(self, feature_info: Sequence[FeatureInfo], num_classes: int) -> None:
        super().__init__()
        if not feature_info:
            raise ValueError("the backbone returned no features (empty feature_info)")
        self.in_channels = tuple(int(f.num_chs) for f in feature_info)
        self.strides = tuple(int(f.reduction) for f in feature_info)
        self.nominal_strides = tuple(int(f.nominal) for f in feature_info)
        self.num_classes = int(num_classes)

    @property
    def output_stride(self) -> int:
        return self.strides[-1]

    def set_output_stride(self, output_stride: int) -> None:
        """Follow a re-dilated backbone: actual strides become min(nominal, output stride)."""
        output_stride = check_output_stride(output_stride)
        self.on_output_stride(output_stride)  # may refuse before anything changes
        self.strides = tuple(min(s, output_stride) for s in self.nominal_strides)

    def on_output_stride(self, output_stride: int) -> None:
        """Hook: adapt the head (atrous rates, ...) to ``output_stride``; weights untouched."""

    def index_of(self, stride: int, *, what: str, nominal: bool = False) -> int:
        """Index of the feature with ``stride`` (actual, or nominal); ValueError naming ``what``."""
        strides = list(self.nominal_strides if nominal else self.strides)
        if stride not in strides:
            kind = "nominal " if nominal else ""
            raise ValueError(
                f"{what} needs a {kind}stride-{stride} feature but the backbone returns "
                f"{kind}strides {strides}; use a backbone that exposes it"
            )
        return strides.index(stride)


def scale_rates(rates: Sequence[int], output_stride: int) -> tuple[int, ...]:
    """Atrous rates given at output stride 16, scaled by 16 / output_stride (x2 at OS 8, /2 at OS 32)."""
    scaled = []
    for r in rates:
        num = int(r) * REFERENCE_OUTPUT_STRIDE
        if num % output_stride:
            raise ValueError(
                f"aspp_rates={list(rates)} are given at output stride 16 and scaled by "
                f"16/{output_stride}; rate {r} would become {num / output_stride:g}. "
                "Use even rates (e.g. aspp_rates=[6,12,18])"
            )
        scaled.append(num // output_stride)
    return tuple(scaled)


def conv1x1(in_channels: int, out_channels: int, *, zero_init: bool = False) -> nn.Conv2d:
    """A biased 1x1 conv, e.g. a classifier; ``zero_init`` makes it output zeros at init."""
    conv = nn.Conv2d(in_channels, out_channels, 1, bias=True)
    if zero_init:
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    return conv
