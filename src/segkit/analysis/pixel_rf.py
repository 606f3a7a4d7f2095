"""Theoretical receptive field of *one* output pixel, as a box on the input image.

The graph trace (``tracer.trace``) gives every tensor's receptive field and stride; for the logits
of a ``Segmentor`` (the head's output, before the final bilinear resize to the input size) that is
one logit's extent ``rf`` per axis and the spacing ``stride`` of the logit grid. ``output_grid``
reads them from a trace at the image's size; ``pixel_receptive_field`` places them:

- logit ``t`` of an axis is centred on input pixel ``t * stride``: every convolution and pooling
  of segkit's backbones and heads pads symmetrically (``padding = dilation * (k - 1) / 2``), so
  unit 0 sits on pixel 0 and each stride-``s`` layer keeps ``s``-spaced centres (a bilinear resize
  inside the head, e.g. the DeepLabv3+ decoder's, shifts its grid by under one fine stride: the
  box is exact to that);
- output pixel ``p`` is the bilinear blend (``align_corners=False``, ``Segmentor``'s resize) of
  the one or two logits around ``(p + 0.5) * n / N - 0.5``; its receptive field is the union of
  theirs, which is the trace's receptive field of ``"out"`` (``rf + stride``) for two taps;
- an infinite extent (image pooling: ASPP's pooling branch, PSPNet's 1x1 bin) is *global*: the
  box is the whole image.

The box is clipped to the image (zero padding contributes nothing); ``clipped`` says when the
theoretical extent reaches past the border.

How exact: for plain strided designs (FCN-32s, a backbone + 1x1 head) the box *is* the support of
the pixel's input gradient (``tests/explore/test_pixel_rf.py``; FCN-32s / MobileNetV2 at 560 px
checked the same way by hand). The trace carries extents and strides but no offsets, so where
branches with shifted grids merge (FCN-16s/8s: transposed-conv upsampling cropped onto a skip;
the DeepLabv3+ decoder without ASPP) the box can sit off by part of the coarse stride (FCN-8s /
MobileNetV2 at 560 px: 3-16 px off on a 547 px box). With image pooling the field is global and
the box exact (the whole image). The explorer draws the box and the grid
(``segkit.explore.drawing``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from segkit.analysis.tracer import TraceResult, WatchedTensor

#: Name of the head's logits among the trace records (``stages.watch_points``).
LOGITS = "logits"


@dataclass(frozen=True)
class OutputGrid:
    """Where a model's logits sit on an input of ``image_size`` (H, W).

    ``grid``: logits (h, w); ``stride``: input pixels between neighbouring logits per axis;
    ``rf``: one logit's theoretical receptive field per axis in input pixels (``inf`` = global).
    """

    image_size: tuple[int, int]
    grid: tuple[int, int]
    stride: tuple[float, float]
    rf: tuple[float, float]

    @property
    def is_global(self) -> bool:
        return any(math.isinf(r) for r in self.rf)


@dataclass(frozen=True)
class PixelRF:
    """The receptive field of output pixel ``pixel`` (row, col): ``box`` = (top, left, bottom,
    right), inclusive input pixels, clipped to the image; ``extent`` = its unclipped size (h, w)
    in pixels (``inf`` on an axis with image-level context); ``clipped``: the theoretical field
    reaches past the image border."""

    pixel: tuple[int, int]
    box: tuple[int, int, int, int]
    extent: tuple[float, float]
    is_global: bool
    clipped: bool

    def label(self) -> str:
        """One line for a caption: 'global (image pooling)' or 'RF 123 x 123 px (clipped)'."""
        if self.is_global:
            return "RF global (image pooling): the whole image"
        h, w = (int(round(e)) for e in self.extent)
        return f"RF {h} x {w} px" + (" (reaches past the image: clipped)" if self.clipped else "")


def output_grid(result: TraceResult, image_size: tuple[int, int]) -> OutputGrid:
    """The logit grid of a trace of a model at ``image_size`` (H, W): the last record named
    ``logits`` (``trace(..., watch=watch_points(model))`` of a Segmentor), else the model's main
    output (a model without a head: its output pixels are its own grid)."""
    logits = [r for r in result.records if r.name == LOGITS and len(r.shape) == 4]
    record = logits[-1] if logits else _main_output(result)
    if len(record.shape) != 4:
        raise ValueError(f"the traced output {record.name!r} is not a (B, K, h, w) map")
    h, w = record.shape[-2:]
    jumps = (record.geometry.axis_jump(0), record.geometry.axis_jump(1))
    stride = tuple(
        float(j) if j is not None else size / n
        for j, size, n in zip(jumps, image_size, (h, w), strict=True)
    )
    return OutputGrid(
        (int(image_size[0]), int(image_size[1])),
        (int(h), int(w)),
        (stride[0], stride[1]),
        (float(record.geometry.rf[0]), float(record.geometry.rf[1])),
    )


def _main_output(result: TraceResult) -> WatchedTensor:
    return result.outputs.get("out") or next(iter(result.outputs.values()))


def bilinear_taps(p: int, n: int, size: int) -> list[int]:
    """Indices of the source positions (of ``n``) that output position ``p`` (of ``size``) of a
    bilinear resize with ``align_corners=False`` blends with a non-zero weight (PyTorch's rule:
    source ``(p + 0.5) * n / size - 0.5``, clamped at 0)."""
    if n == size:
        return [p]
    u = max((p + 0.5) * n / size - 0.5, 0.0)
    i0 = min(int(math.floor(u)), n - 1)
    i1 = min(i0 + 1, n - 1)
    # weights 1 - frac and frac: the second tap counts only when frac > 0
    return [i0, i1] if u - i0 > 0.0 and i1 != i0 else [i0]


def pixel_receptive_field(grid: OutputGrid, pixel: tuple[int, int]) -> PixelRF:
    """The receptive-field box of output pixel ``pixel`` = (row, col) (see the module doc)."""
    row, col = (int(v) for v in pixel)
    height, width = grid.image_size
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"pixel (row={row}, col={col}) lies outside the {height} x {width} image")
    spans, extents, clipped = [], [], False
    for p, size, n, stride, rf in zip(
        (row, col), grid.image_size, grid.grid, grid.stride, grid.rf, strict=True
    ):
        if math.isinf(rf):
            spans.append((0, size - 1))
            extents.append(math.inf)
            continue
        taps = bilinear_taps(p, n, size)
        half = (rf - 1.0) / 2.0
        lo, hi = min(taps) * stride - half, max(taps) * stride + half
        first, last = math.ceil(lo - 1e-6), math.floor(hi + 1e-6)
        extents.append(float(last - first + 1))
        clipped = clipped or first < 0 or last > size - 1
        spans.append((max(first, 0), min(last, size - 1)))
    (top, bottom), (left, right) = spans
    return PixelRF(
        (row, col),
        (top, left, bottom, right),
        (extents[0], extents[1]),
        grid.is_global,
        clipped,
    )


__all__ = [
    "OutputGrid",
    "PixelRF",
    "bilinear_taps",
    "output_grid",
    "pixel_receptive_field",
]
