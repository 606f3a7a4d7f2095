"""Segmentation metrics from confusion matrices, accumulated on the device by one torchmetrics Metric.

Every metric segkit reports (mIoU, per-class IoU, pixel accuracy, mean class accuracy, frequency-weighted
IoU, trimap IoU, per-image mIoU) is derived from (K, K) confusion matrices ``cm[target, prediction]``
of pixel counts. :class:`SegConfusion` holds them: per batch one ``bincount``
(``counting.joint_counts``) on whatever device the tensors are on, no host copy, no sync; under
torch.distributed its states are summed (or, per image, gathered) across ranks once, in ``compute``.
Training validation and the evaluator both use it. Void pixels (``IGNORE_INDEX``) never count.
With ``boundary=True`` it also keeps SegNet's boundary F1 (``segkit.evaluation.boundary``): per image
and class, summed (and, per image, gathered) the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from segkit.constants import IGNORE_INDEX
from segkit.evaluation.boundary import boundary_f1
from segkit.evaluation.counting import joint_counts
from segkit.evaluation.trimap import bottom_right_padding, trimap_levels


def confusion_matrix(
    pred: Tensor, target: Tensor, num_classes: int, *, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Pixel-count confusion matrix of one batch, rows = ground truth, columns = prediction.

    Args:
        pred: (B, H, W) integer class predictions.
        target: (B, H, W) integer labels; ``ignore_index`` pixels are skipped.
        num_classes: K.

    Returns:
        (K, K) int64 tensor on ``target``'s device.
    """
    return joint_counts(pred, target, num_classes, ignore_index=ignore_index).sum((0, 1))


class Confusion:
    """What :meth:`SegConfusion.compute` returns (int64 tensors on the metric's device).

    A plain class, not a dataclass: torchmetrics squeezes every one-element tensor it finds inside
    a collection returned by ``compute`` (a single image's index would lose its dimension).

    Attributes:
        matrix: (K, K) pixel counts of every image, rows = ground truth.
        widths: the trimap band widths, ascending.
        trimap: (W, K, K): the matrix of the pixels within ``widths[w]`` px of a boundary.
        image_index: (N,) the ``index`` of each image given to ``update``, ascending; None unless
            ``per_image``.
        image_matrix: (N, K, K) per-image matrices in ``image_index`` order (their sum is
            ``matrix``); None unless ``per_image``.
        image_trimap: (N, W, K, K) per-image band matrices (summed over images: ``trimap``).
        bf: () float64 boundary F1 of the split (mean over images with a labelled pixel of each
            image's BF), None unless ``boundary``; NaN before any such image.
        class_bf: (K,) float64 mean F1 of each class over the images whose ground truth holds it
            (NaN for a class in none), None unless ``boundary``.
        image_bf: (N, K) float64 F1 of each image and class in ``image_index`` order, NaN where the
            class is not in the image's ground truth; None unless ``boundary`` and ``per_image``.
    """

    def __init__(self, matrix: Tensor, widths: tuple[int, ...], trimap: Tensor) -> None:
        self.matrix = matrix
        self.widths = widths
        self.trimap = trimap
        self.image_index: Tensor | None = None
        self.image_matrix: Tensor | None = None
        self.image_trimap: Tensor | None = None
        self.bf: Tensor | None = None
        self.class_bf: Tensor | None = None
        self.image_bf: Tensor | None = None


class SegConfusion(Metric):
    """Running confusion matrices: global, per trimap band, and (optionally) per image.

    The states live on the metric's device; ``update`` adds one batch with a single ``bincount``
    over (trimap level, image, ground truth, prediction) and never waits for the device. Under
    torch.distributed, ``compute`` sums the global and band matrices of all ranks
    (``dist_reduce_fx="sum"``) and gathers the per-image ones (``"cat"``) with their indices,
    ordered by index, so every rank gets the same, order-independent answer.

    Args:
        num_classes: K.
        trimap_widths: band widths in px (DeepLabv3+ fig. 5, see ``segkit.evaluation.trimap``);
            empty = no trimap.
        per_image: also keep one matrix per image (and per image and band), keyed by the
            ``index`` given to ``update``.
        boundary: also score SegNet's boundary F1 (``segkit.evaluation.boundary``), per image and
            class; kept per image too with ``per_image``.
        ignore_index: the void label.
        **kwargs: torchmetrics ``Metric`` options (``sync_on_compute``, ``process_group``, ...).
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(
        self,
        num_classes: int,
        *,
        trimap_widths: Sequence[int] = (),
        per_image: bool = False,
        boundary: bool = False,
        ignore_index: int = IGNORE_INDEX,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.widths = tuple(sorted({int(w) for w in trimap_widths}))
        self.per_image = per_image
        self.boundary = boundary
        self.ignore_index = ignore_index
        k, w = self.num_classes, len(self.widths)
        self.add_state("confusion", torch.zeros(k, k, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("trimap", torch.zeros(w, k, k, dtype=torch.int64), dist_reduce_fx="sum")
        if per_image:
            self.add_state("image_index", [], dist_reduce_fx="cat")  # (B,) int64 per batch
            self.add_state("image_counts", [], dist_reduce_fx="cat")  # (B, 1 + W, K, K)
        if boundary:
            # [0]: sum of the images' BF, [1 + c]: sum of class c's F1; counts: images scored
            f64 = torch.float64
            self.add_state("bf_sum", torch.zeros(1 + k, dtype=f64), dist_reduce_fx="sum")
            self.add_state("bf_count", torch.zeros(1 + k, dtype=torch.int64), dist_reduce_fx="sum")
            if per_image:
                self.add_state("image_bf", [], dist_reduce_fx="cat")  # (B, K) float64

    def update(
        self, pred: Tensor, target: Tensor, index: Tensor | None = None, sizes: Tensor | None = None
    ) -> None:
        """Add a batch: ``pred`` (B, H, W) class ids, ``target`` (B, H, W) uint8/int64 labels
        (void = ``ignore_index``; batch padding is void too and is no trimap boundary), both on
        the metric's device; ``index`` (B,) int64 image keys, required with ``per_image``;
        ``sizes`` (B, 2) each image's unpadded (height, width) for the boundary F1 (default: its
        labelled extent, ``boundary.labelled_extent``)."""
        n = len(self.widths)
        level = None
        if n:
            # Padding from pad_collate is no object boundary: the band must not depend on batching.
            padding = bottom_right_padding(target)
            _, level = trimap_levels(target, self.widths, padding=padding)
        counts = joint_counts(
            pred, target, self.num_classes, level=level, num_levels=n + 1 if n else 1,
            ignore_index=self.ignore_index,
        )  # fmt: skip
        per_image = counts.sum(0)  # (B, K, K)
        self.confusion += per_image.sum(0)
        # Each pixel is counted under its narrowest band; the bands are nested, so a cumulative
        # sum over levels gives every band's matrix.
        bands = counts[:n].cumsum(0)  # (W, B, K, K)
        self.trimap += bands.sum(1)
        if self.per_image:
            if index is None or index.shape != (target.shape[0],):
                raise ValueError(
                    f"SegConfusion(per_image=True) needs index of shape ({target.shape[0]},), got "
                    f"{None if index is None else tuple(index.shape)}"
                )
            self.image_index.append(index.to(self.confusion.device, torch.int64))
            self.image_counts.append(torch.cat([per_image.unsqueeze(1), bands.transpose(0, 1)], 1))
        if self.boundary:
            self._add_boundary(pred, target, sizes)

    def last_image_matrices(self) -> Tensor:
        """(B, K, K) per-image matrices of the last ``update``'s batch, on the metric's device
        (``per_image`` only; what ``compute`` returns for those images)."""
        if not self.per_image or not self.image_counts:
            raise ValueError("last_image_matrices needs per_image=True and one update")
        return self.image_counts[-1][:, 0]

    def _add_boundary(self, pred: Tensor, target: Tensor, sizes: Tensor | None) -> None:
        f1 = boundary_f1(
            pred, target, self.num_classes, sizes=sizes, ignore_index=self.ignore_index
        )
        image = f1.nanmean(1, keepdim=True)  # NaN for an image without a labelled pixel
        both = torch.cat([image, f1], 1)  # (B, 1 + K)
        scored = ~torch.isnan(both)
        self.bf_sum += both.nan_to_num(0.0).sum(0)
        self.bf_count += scored.sum(0)
        if self.per_image:
            self.image_bf.append(f1)

    def sync(self, *args: Any, **kwargs: Any) -> None:
        # A rank that saw no image would offer torchmetrics an empty list, which it replaces by a
        # 1-d float placeholder that cannot be gathered with the other ranks' (B, 1 + W, K, K)
        # tensors: give it empty tensors of the right shape and dtype instead.
        if self.per_image and not self.image_counts:
            k, w = self.num_classes, len(self.widths)
            self.image_index.append(self.confusion.new_zeros(0))
            self.image_counts.append(self.confusion.new_zeros(0, 1 + w, k, k))
            if self.boundary:
                self.image_bf.append(self.bf_sum.new_zeros(0, k))
        super().sync(*args, **kwargs)

    def compute(self) -> Confusion:
        # Copies: the states go on accumulating in place after compute.
        out = Confusion(self.confusion.clone(), self.widths, self.trimap.clone())
        if self.per_image:
            k, w = self.num_classes, len(self.widths)
            index = _cat(self.image_index, self.confusion.new_zeros(0))
            counts = _cat(self.image_counts, self.confusion.new_zeros(0, 1 + w, k, k))
            order = torch.argsort(index, stable=True)
            out.image_index = index[order]
            out.image_matrix = counts[order, 0]
            out.image_trimap = counts[order, 1:]
            if self.boundary:
                out.image_bf = _cat(self.image_bf, self.bf_sum.new_zeros(0, k))[order]
        if self.boundary:
            mean = self.bf_sum / self.bf_count  # NaN where nothing was scored
            out.bf, out.class_bf = mean[0], mean[1:]
            if out.image_bf is not None:  # the same mean, in image order: the same on any ranks
                out.bf, out.class_bf = out.image_bf.nanmean(1).nanmean(), out.image_bf.nanmean(0)
        return out


def _cat(state: Tensor | list[Tensor], empty: Tensor) -> Tensor:
    """A list state as one tensor (after a sync torchmetrics has already concatenated it)."""
    if isinstance(state, Tensor):
        return state
    return torch.cat(state) if state else empty


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


__all__ = ["Confusion", "SegConfusion", "confusion_matrix", "scores_from_confusion"]
