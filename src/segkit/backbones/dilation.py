"""Output stride -> per-unit stride and dilation, decided from the nominal strides.

The rule (timm / DeepLab): walk the units in order with a running stride. A unit whose stride would
push the running stride past the target gets stride 1 and keeps the *previous* dilation; every later
unit's dilation is multiplied by the stride that was dropped. Field of view is preserved: a 3x3 conv
after a dropped stride 2 sees the same input extent with rate 2 as it did at stride 2 with rate 1.

The same plan is used at build time and by ``set_output_stride`` (which rewrites the ``stride``,
``dilation`` and ``padding`` attributes of existing convs and pools; no parameter changes shape).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from segkit.backbones.base import check_output_stride
from segkit.nn.pool import DilatedMaxPool2d


@dataclass(frozen=True)
class UnitGeometry:
    """Where a unit ends up: its actual stride, the dilation of its convs, the running stride
    before and after it."""

    stride: int
    dilation: int
    stride_in: int
    stride_out: int


def plan_dilation(
    nominal_strides: Sequence[int], output_stride: int, *, input_stride: int = 1
) -> list[UnitGeometry]:
    """Plan each unit for ``output_stride``; ``input_stride`` is the stride already taken (stem)."""
    check_output_stride(output_stride)
    running, dilation = input_stride, 1
    plan = []
    for s in nominal_strides:
        if running * s > output_stride:
            plan.append(UnitGeometry(1, dilation, running, running))
            dilation *= s
        else:
            plan.append(UnitGeometry(s, dilation, running, running * s))
            running *= s
    return plan


def nominal_strides_out(nominal_strides: Sequence[int], *, input_stride: int = 1) -> list[int]:
    """The running stride after each unit, undilated (what ``FeatureInfo.nominal`` reports)."""
    out, running = [], input_stride
    for s in nominal_strides:
        running *= s
        out.append(running)
    return out


def multi_grid_rates(multi_grid: Sequence[int] | None, count: int) -> list[int]:
    """Unit rates for ``count`` convs of the last stage, cycling through ``multi_grid`` (DeepLabv3
    multi-grid: rate of conv i = stage rate * multi_grid[i])."""
    grid = tuple(multi_grid) if multi_grid else (1,)
    if any(int(g) < 1 for g in grid):
        raise ValueError(f"multi_grid rates must be positive integers, got {tuple(grid)}")
    return [int(grid[i % len(grid)]) for i in range(count)]


def set_conv_geometry(conv: nn.Conv2d, stride: int, dilation: int) -> None:
    """Give ``conv`` a new stride and dilation with 'same'-style padding ``(k - 1) * r // 2``.

    Only attributes change, so weights, gradients and optimizer state are untouched.
    """
    k_h, k_w = conv.kernel_size
    conv.stride = (stride, stride)
    if k_h == 1 and k_w == 1:
        return  # a 1x1 conv has no taps to spread; keep its dilation at 1
    conv.dilation = (dilation, dilation)
    conv.padding = ((k_h - 1) * dilation // 2, (k_w - 1) * dilation // 2)


def set_pool_geometry(pool: DilatedMaxPool2d, stride: int, dilation: int) -> None:
    """Same for a max-pool (its padding follows from the dilation)."""
    pool.stride = stride
    pool.dilation = dilation
