"""The output-stride planner: hand-worked plans for the Xception-65 / MobileNetV2 stride patterns."""

import pytest

from segkit.backbones.dilation import (
    UnitGeometry,
    multi_grid_rates,
    plan_dilation,
    set_conv_geometry,
)
from segkit.nn.atrous import AtrousConv2d

# Entry flow 3 x stride 2, two middle blocks, exit stride 2, final block (after a stride-2 stem).
STRIDES = [2, 2, 2, 1, 1, 2, 1]


def test_os32_keeps_every_stride() -> None:
    plan = plan_dilation(STRIDES, 32, input_stride=2)
    assert [g.stride for g in plan] == STRIDES
    assert all(g.dilation == 1 for g in plan)
    assert plan[-1].stride_out == 32


def test_os16_striding_block_keeps_old_rate_later_blocks_double() -> None:
    plan = plan_dilation(STRIDES, 16, input_stride=2)
    # The exit block would go 16 -> 32: it gets stride 1 and still rate 1; the block after: rate 2.
    assert plan[5] == UnitGeometry(stride=1, dilation=1, stride_in=16, stride_out=16)
    assert plan[6] == UnitGeometry(stride=1, dilation=2, stride_in=16, stride_out=16)


def test_os8_rates_multiply() -> None:
    plan = plan_dilation(STRIDES, 8, input_stride=2)
    assert [g.stride for g in plan] == [2, 2, 1, 1, 1, 1, 1]
    assert [g.dilation for g in plan] == [1, 1, 1, 2, 2, 2, 4]
    assert {g.stride_out for g in plan[2:]} == {8}


def test_invalid_output_stride_names_choices() -> None:
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32, got 12"):
        plan_dilation(STRIDES, 12)


def test_multi_grid_cycles_and_validates() -> None:
    assert multi_grid_rates((1, 2, 4), 3) == [1, 2, 4]
    assert multi_grid_rates((1, 2), 3) == [1, 2, 1]
    assert multi_grid_rates(None, 2) == [1, 1]
    with pytest.raises(ValueError, match="multi_grid"):
        multi_grid_rates((1, 0), 2)


def test_set_conv_geometry_changes_attributes_not_weights() -> None:
    conv = AtrousConv2d(4, 4, 3, stride=2)
    weight = conv.weight
    set_conv_geometry(conv, 1, 4)
    assert conv.stride == (1, 1) and conv.dilation == (4, 4) and conv.padding == (4, 4)
    assert conv.weight is weight
