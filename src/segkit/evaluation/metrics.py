"""Segmentation metrics from one confusion matrix, accumulated on the device.

Every metric segkit reports (mIoU, per-class IoU, pixel accuracy, mean class accuracy, frequency-weighted
IoU, trimap IoU) is derived from a (K, K) confusion matrix ``cm[target, prediction]`` of pixel counts.
The matrix is built with one ``bincount`` per batch on whatever device the tensors are on; nothing is
copied to the host until :func:`scores_from_confusion` is called once at the end. Void pixels
(``IGNORE_INDEX``) never count.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from segkit.constants import IGNORE_INDEX
from segkit.evaluation.counting import joint_counts


def confusion_matrix(
    pred: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    ignore_index: int = IGNORE_INDEX,
    valid: Tensor | None = None,
) -> Tensor:
    """Pixel-count confusion matrix, rows = ground truth, columns = prediction.

    Args:
        pred: (B, H, W) integer class predictions.
        target: (B, H, W) integer labels; ``ignore_index`` pixels are skipped.
        num_classes: K.
        valid: optional (B, H, W) bool mask of pixels to count (e.g. a trimap band).

    Returns:
        (K, K) int64 tensor on ``target``'s device.
    """
    if valid is not None:
        target = target.masked_fill(~valid, ignore_index)
    counts = joint_counts(pred, target, num_classes, ignore_index=ignore_index)
    return counts.sum((0, 1))


class ConfusionMatrix:
    """Running (K, K) confusion matrix on a device, reducible across DDP ranks."""

    def __init__(self, num_classes: int, *, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Add a batch: ``pred``/``target`` (B, H, W) on the matrix's device."""
        self.matrix += confusion_matrix(pred, target, self.num_classes, valid=valid)

    def reset(self) -> None:
        self.matrix.zero_()

    def all_reduce(self) -> None:
        """Sum the matrices of all ranks in place (no-op outside torch.distributed)."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM)


def scores_from_confusion(cm: Tensor) -> dict[str, float | list[float]]:
    """Metrics from a (K, K) confusion matrix (rows = ground truth).

    Classes that appear neither in the ground truth nor in the predictions have an undefined IoU
    (NaN in ``per_class_iou``) and are left out of the means, as in the VOC devkit.

    Returns:
        ``mIoU``, ``pixel_acc``, ``mean_class_acc``, ``fw_IoU`` (floats, 0..1) and
        ``per_class_iou`` / ``per_class_acc`` (lists of K floats, NaN where undefined).
    """
    cm = cm.double().cpu()
    tp = cm.diag()
    gt = cm.sum(1)
    predicted = cm.sum(0)
    union = gt + predicted - tp
    iou = tp / union  # NaN where union == 0
    acc = tp / gt  # NaN where the class is absent from the ground truth
    total = cm.sum()
    freq = gt / total if total > 0 else gt
    present = union > 0
    return {
        "mIoU": _nanmean(iou),
        "pixel_acc": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_class_acc": _nanmean(acc),
        "fw_IoU": float((freq[present] * iou[present]).sum()) if total > 0 else float("nan"),
        "per_class_iou": iou.tolist(),
        "per_class_acc": acc.tolist(),
    }


def _nanmean(x: Tensor) -> float:
    finite = x[~torch.isnan(x)]
    return float(finite.mean()) if finite.numel() else float("nan")
