"""Analysed input sizes in compare's tables and plots: a side (older analysis.json) or [H, W]."""

from segkit.compare.table import DASH, size_text


def test_sizes_read_as_a_side_or_height_x_width():
    assert size_text(513) == size_text([513, 513]) == "513"
    assert size_text([360, 480]) == "360×480"
    assert size_text(None) == DASH
