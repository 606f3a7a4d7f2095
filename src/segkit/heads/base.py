"""What every head shares: finding its inputs by stride, and scaling atrous rates to the output stride.

A head is built from the backbone's feature contract, ``in_channels[i]`` and ``strides[i]`` of each
returned feature. Strides are *actual* strides: a backbone dilated to output stride 8 reports
``[4, 8, 8, 8]`` where it would report ``[4, 8, 16, 32]`` at output stride 32. The contract returns one
feature per stage at nominal reductions that double, so the nominal stride of every feature can be
recovered (:func:`nominal_strides`); heads that must keep their structure when the output stride
changes (FCN skips, the aux head) pick features by nominal stride.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

#: The output stride at which the paper's ASPP rates (6, 12, 18) are given.
REFERENCE_OUTPUT_STRIDE = 16


def nominal_strides(strides: Sequence[int]) -> list[int]:
    """Strides the features would have undilated, from their actual strides.

    ``[4, 8, 8, 8] -> [4, 8, 16, 32]``: a feature whose stride did not grow sits one stage deeper
    than the previous one, i.e. at twice its nominal stride.
    """
    strides = [int(s) for s in strides]
    if not strides:
        raise ValueError("the backbone returned no features (empty feature contract)")
    os = strides[-1]
    nominal = [strides[0]]
    for prev, s in zip(strides, strides[1:], strict=False):
        if s < prev or (s == prev and s < os):
            raise ValueError(
                f"backbone feature strides {strides} break the feature contract: one feature per "
                "stage, strides doubling until the output stride (fix the backbone's feature_info)"
            )
        nominal.append(s if s > prev else 2 * nominal[-1])
    return nominal


def feature_index(strides: Sequence[int], stride: int, *, what: str) -> int:
    """Index of the feature with (nominal or actual) ``stride``; ValueError naming ``what`` needs it."""
    strides = list(strides)
    if stride not in strides:
        raise ValueError(
            f"{what} needs a stride-{stride} feature but the backbone returns strides {strides}; "
            "use a backbone that exposes it"
        )
    return strides.index(stride)


def scale_rates(rates: Sequence[int], output_stride: int) -> tuple[int, ...]:
    """Atrous rates given at output stride 16, scaled by 16 / output_stride (x2 at OS 8, /2 at OS 32)."""
    scaled = []
    for r in rates:
        num = int(r) * REFERENCE_OUTPUT_STRIDE
        if num % output_stride:
            raise ValueError(
                f"aspp_rates {list(rates)} are given at output stride 16 and scaled by "
                f"16/{output_stride}; rate {r} would become {num / output_stride:g}. "
                "Use even rates (e.g. model.aspp_rates=[6,12,18])"
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
