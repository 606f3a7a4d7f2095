"""Trimap (boundary band) evaluation of the DeepLabv3+ paper, fig. 5.

IoU is measured only on pixels within ``width`` pixels of a ground-truth boundary, for several widths:
the narrower the band, the more the score reflects how well a design delineates object boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from segkit.constants import IGNORE_INDEX
from segkit.evaluation.metrics import ConfusionMatrix


def bottom_right_padding(target: Tensor) -> Tensor:
    """(B, H, W) labels -> (B, H, W) bool: the all-void rows below and columns right of each image's
    last labelled pixel, i.e. what ``pad_collate`` adds when batching images of different sizes.

    Trailing all-void rows/columns of an unpadded image are marked too, so the result (and the trimap
    built on it) is the same whether or not the image was padded.
    """
    b, h, w = target.shape
    labelled = target != IGNORE_INDEX
    rows = torch.arange(1, h + 1, device=target.device).view(1, h)
    cols = torch.arange(1, w + 1, device=target.device).view(1, w)
    last_row = (labelled.any(2) * rows).amax(1).view(b, 1, 1)  # 0 when the image is all void
    last_col = (labelled.any(1) * cols).amax(1).view(b, 1, 1)
    return (rows.view(1, h, 1) > last_row) | (cols.view(1, 1, w) > last_col)


def boundary_map(target: Tensor, padding: Tensor | None = None) -> Tensor:
    """(B, H, W) labels -> (B, H, W) bool: pixels with a 4-neighbour of another label.

    Void (255) is a label here: VOC draws void along object outlines, so label<->void transitions are
    the object boundaries. Transitions into ``padding`` (bool (B, H, W), e.g.
    :func:`bottom_right_padding`) are not boundaries: the image simply ends there.
    """
    t = target
    edge = torch.zeros_like(t, dtype=torch.bool)
    dy = t[:, 1:, :] != t[:, :-1, :]
    dx = t[:, :, 1:] != t[:, :, :-1]
    if padding is not None:
        dy &= ~(padding[:, 1:, :] | padding[:, :-1, :])
        dx &= ~(padding[:, :, 1:] | padding[:, :, :-1])
    edge[:, 1:, :] |= dy
    edge[:, :-1, :] |= dy
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    return edge


def trimap_bands(
    target: Tensor, widths: Sequence[int], *, padding: Tensor | None = None
) -> dict[int, Tensor]:
    """For each width w: (B, H, W) bool of pixels within Chebyshev distance w of a boundary pixel.

    ``padding``: see :func:`boundary_map`.
    """
    bad = [w for w in widths if int(w) < 0]
    if bad:
        raise ValueError(f"trimap widths must be >= 0, got {bad} (eval.trimap_widths)")
    edge = boundary_map(target, padding).unsqueeze(1).float()
    return {int(w): _dilate(edge, int(w)).squeeze(1) > 0 for w in widths}


def _dilate(edge: Tensor, w: int) -> Tensor:
    """(B, 1, H, W) max over a (2w+1)^2 square, as a row pass then a column pass: the square
    (Chebyshev) window is separable, so 2(2w+1) comparisons per pixel instead of (2w+1)^2."""
    if w == 0:
        return edge
    rows = F.max_pool2d(edge, kernel_size=(1, 2 * w + 1), stride=1, padding=(0, w))
    return F.max_pool2d(rows, kernel_size=(2 * w + 1, 1), stride=1, padding=(w, 0))


class TrimapMeter:
    """One confusion matrix per band width; ``update`` per batch, all on the device.

    Bands are nested (a pixel within w px of a boundary is within every larger width too), so one
    ``bincount`` over (narrowest band holding the pixel, target, prediction) followed by a cumulative
    sum over bands gives every width's matrix: one counting pass per batch instead of one per width.
    """

    def __init__(
        self, num_classes: int, widths: Sequence[int], *, device: torch.device | str = "cpu"
    ) -> None:
        self.num_classes = num_classes
        self.widths = sorted({int(w) for w in widths})
        self.matrices = {w: ConfusionMatrix(num_classes, device=device) for w in self.widths}

    def update(self, pred: Tensor, target: Tensor, padding: Tensor | None = None) -> None:
        """Add a batch (B, H, W); ``padding`` marks padded pixels (see :func:`boundary_map`)."""
        if not self.widths:
            return
        n, k = len(self.widths), self.num_classes
        bands = trimap_bands(target, self.widths, padding=padding)
        level = torch.full_like(target, n)  # n = in no band
        for i in reversed(range(n)):  # narrow bands last: they win
            level.masked_fill_(bands[self.widths[i]], i)
        keep = (target != IGNORE_INDEX) & (level < n)
        flat = (level[keep] * k + target[keep]) * k + pred[keep]
        counts = torch.bincount(flat, minlength=n * k * k)
        if counts.numel() != n * k * k:  # size known on the host: no extra device sync
            raise ValueError(
                f"a label or prediction >= num_classes={k} reached the trimap meter "
                "(check data.num_classes)"
            )
        counts = counts.reshape(n, k, k)
        for w, matrix in zip(self.widths, counts.cumsum(0), strict=True):
            self.matrices[w].matrix += matrix

    def all_reduce(self) -> None:
        for cm in self.matrices.values():
            cm.all_reduce()
