"""One counting pass per batch: pixel counts by (trimap level, image, ground truth, prediction).

The evaluator needs three sets of confusion matrices per batch: the global one, one per image (to
rank the best / worst images) and one per trimap band. All three are sums of one 4-d histogram
``counts[level, image, target, prediction]``, built here with a single ``bincount`` over the batch:
no boolean indexing (on a GPU each mask-select waits for the device to learn its size) and no host
copy. Void pixels (``IGNORE_INDEX``) are counted in an extra level that is dropped.
"""

from __future__ import annotations

import torch
from torch import Tensor

from segkit.constants import IGNORE_INDEX


def joint_counts(
    pred: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    level: Tensor | None = None,
    num_levels: int = 1,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Pixel counts ``(L, B, K, K)``: ``[level, image, ground truth, prediction]``, void left out.

    Args:
        pred: (B, H, W) int64 predictions in ``0..K-1`` (an argmax over K scores).
        target: (B, H, W) int64 labels in ``0..K-1`` or ``ignore_index``.
        num_classes: K.
        level: optional (B, H, W) int64 in ``0..L-1`` (e.g. :func:`~segkit.evaluation.trimap.
            trimap_levels`); None = every pixel at level 0.
        num_levels: L.

    Returns:
        (L, B, K, K) int64 on ``target``'s device. ``.sum((0, 1))`` is the batch's confusion matrix,
        ``.sum(0)`` the per-image matrices. Memory: L·B·K² bins (VOC, 9 levels, batch 8: 32k).

    Raises:
        ValueError: a label >= K that is not ``ignore_index`` (the data has more classes than K).
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape"
        )
    b, k = target.shape[0], num_classes
    pred, target = pred.long(), target.long()  # uint8 maps would overflow in the index arithmetic
    void = target == ignore_index
    # Void pixels go to an extra level L (dropped below) with label 0, so every pixel gets a bin.
    lev = torch.zeros_like(target) if level is None else level.long()
    lev = lev.masked_fill(void, num_levels)
    t = target.masked_fill(void, 0)
    image = torch.arange(b, device=target.device).view(b, 1, 1)
    # The label is the most significant digit: a label >= K lands past the last bin and makes the
    # histogram longer, which the host sees from its size alone (no device sync).
    flat = ((t * k + pred) * (num_levels + 1) + lev) * b + image
    size = k * k * (num_levels + 1) * b
    counts = torch.bincount(flat.reshape(-1), minlength=size)
    if counts.numel() != size:
        bad = int(t.max())
        raise ValueError(
            f"label {bad} >= num_classes={k}: the data has more classes than the model "
            "(check the dataset's num_classes)"
        )
    counts = counts.reshape(k, k, num_levels + 1, b)[:, :, :num_levels]
    return counts.permute(2, 3, 0, 1)


def miou_of_matrices(cm: Tensor) -> Tensor:
    """(..., K, K) confusion matrices -> (...) mIoU over the classes present (in truth or
    prediction) of each; NaN where a matrix has no pixel."""
    cm = cm.double()
    tp = cm.diagonal(dim1=-2, dim2=-1)
    union = cm.sum(-1) + cm.sum(-2) - tp
    present = union > 0
    iou = torch.where(present, tp / union.clamp(min=1), torch.zeros_like(tp))
    return iou.sum(-1) / present.sum(-1)


__all__ = ["joint_counts", "miou_of_matrices"]
