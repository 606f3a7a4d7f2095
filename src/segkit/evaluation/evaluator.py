"""The evaluation loop: a dataloader of uint8 batches -> one confusion matrix (+ trimap matrices).

Everything stays on the device until the loop ends: per batch one normalisation, one inference, the
trimap level map, and one ``bincount`` (``counting.joint_counts``) whose sums give the global matrix,
the per-image matrices (used to pick the best / worst images) and the trimap matrices. Padding (mask
255 from ``pad_collate``) never counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from segkit.data.transforms import normalize
from segkit.evaluation.counting import joint_counts, miou_of_matrices
from segkit.evaluation.inference import InferenceSettings, infer
from segkit.evaluation.metrics import ConfusionMatrix, scores_from_confusion
from segkit.evaluation.trimap import TrimapMeter, bottom_right_padding, trimap_levels


@dataclass
class EvalResult:
    """What an evaluation produced: the summed matrices and per-image mIoU.

    Attributes:
        confusion: (K, K) int64 pixel counts, rows = ground truth (on the CPU).
        trimap: {band width: (K, K) confusion matrix of the pixels in that band}.
        image_ids: ids in loader order; ``image_miou`` holds their per-image mIoU (NaN if no
            valid pixel).
        num_images: images evaluated.
        image_confusion: (N, K, K) int64 per-image matrices in ``image_ids`` order (their sum is
            ``confusion``); what a paired bootstrap over images resamples.
        image_trimap: (N, W, K, K) int64 per-image matrices of each trimap band (widths in
            ``sorted(trimap)`` order; summed over images they give ``trimap``), or None.
    """

    confusion: Tensor
    trimap: dict[int, Tensor] = field(default_factory=dict)
    image_ids: list[str] = field(default_factory=list)
    image_miou: list[float] = field(default_factory=list)
    num_images: int = 0
    image_confusion: Tensor | None = None
    image_trimap: Tensor | None = None

    def scores(self) -> dict[str, Any]:
        """mIoU, pixel_acc, mean_class_acc, fw_IoU, per_class_iou/acc (see ``scores_from_confusion``)."""
        return scores_from_confusion(self.confusion)

    def trimap_miou(self) -> dict[int, float]:
        """{band width: mIoU restricted to that band}."""
        return {w: float(scores_from_confusion(cm)["mIoU"]) for w, cm in self.trimap.items()}


def per_image_miou(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """(B, H, W) predictions and labels -> (B,) mIoU of each image (classes present in it), on device.

    Void pixels are left out; NaN for an image without a labelled pixel.
    """
    return miou_of_matrices(joint_counts(pred, target, num_classes)[0])


class Evaluator:
    """Accumulates the metrics of one model over batches; reducible across DDP ranks.

    Args:
        model: a Segmentor-like module (put in eval mode and left on ``device``).
        num_classes: K.
        settings: inference mode / scales / flip / window.
        trimap_widths: band widths (pixels) for the trimap curve; empty = no trimap.
        device: where inference and accumulation happen.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        num_classes: int,
        settings: InferenceSettings,
        trimap_widths: Sequence[int] = (),
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.num_classes = num_classes
        self.settings = settings
        self.confusion = ConfusionMatrix(num_classes, device=self.device)
        self.trimap = TrimapMeter(num_classes, trimap_widths, device=self.device)
        self._image_miou: list[Tensor] = []
        self._image_counts: list[Tensor] = []  # (B, W + 1, K, K): whole image, then each band
        self._ids: list[str] = []

    def predict(self, image_uint8: Tensor) -> Tensor:
        """uint8 (B, 3, H, W) on any device -> (B, H, W) int64 predictions on ``device``."""
        image = normalize(image_uint8.to(self.device, non_blocking=True))
        scores = infer(self.model, image, self.settings)
        if scores.shape[1] != self.num_classes:  # a shape: known on the host, no device sync
            raise ValueError(
                f"the model predicts {scores.shape[1]} classes but the evaluation expects "
                f"{self.num_classes} (data.num_classes)"
            )
        return scores.argmax(1)

    @torch.inference_mode()
    def update(self, batch: dict[str, Any]) -> None:
        """Add one batch ``{"image": uint8 (B,3,H,W), "mask": uint8|int64 (B,H,W), "id": [...]}``."""
        pred = self.predict(batch["image"])
        # uint8 masks (pad_collate) cross the bus 8x smaller than int64; the trimap works on them
        # as they are and joint_counts widens them on the device.
        mask = batch["mask"].to(self.device, non_blocking=True)
        # Padding from pad_collate is no object boundary: the band must not depend on batching.
        widths, level = trimap_levels(mask, self.trimap.widths, padding=bottom_right_padding(mask))
        n = len(widths)
        counts = joint_counts(pred, mask, self.num_classes, level=level, num_levels=n + 1)
        per_image = counts.sum(0)  # (B, K, K)
        self.confusion.matrix += per_image.sum(0)
        self.trimap.add(counts[:n].sum(1))
        self._image_miou.append(miou_of_matrices(per_image))
        # Per-image matrices stay on the device (no sync); bands are cumulative over levels.
        bands = counts[:n].cumsum(0).transpose(0, 1)  # (B, W, K, K)
        self._image_counts.append(torch.cat([per_image.unsqueeze(1), bands], dim=1))
        self._ids.extend(batch["id"])

    def run(self, batches: Iterable[dict[str, Any]]) -> EvalResult:
        """Evaluate every batch, reduce across ranks, return the result (moved to the CPU once)."""
        for batch in batches:
            self.update(batch)
        return self.result()

    def result(self) -> EvalResult:
        self.confusion.all_reduce()
        self.trimap.all_reduce()
        miou = torch.cat(self._image_miou).cpu().tolist() if self._image_miou else []
        per_image = torch.cat(self._image_counts).cpu() if self._image_counts else None
        return EvalResult(
            confusion=self.confusion.matrix.cpu(),
            trimap={w: cm.matrix.cpu() for w, cm in self.trimap.matrices.items()},
            image_ids=list(self._ids),
            image_miou=miou,
            num_images=len(self._ids),
            image_confusion=None if per_image is None else per_image[:, 0],
            image_trimap=None if per_image is None or not self.trimap.widths else per_image[:, 1:],
        )


def best_and_worst(result: EvalResult, count: int) -> tuple[list[str], list[str]]:
    """Ids of the ``count`` highest- and lowest-mIoU images (images without valid pixels skipped)."""
    if count <= 0:
        return [], []
    scored = [(m, i) for m, i in zip(result.image_miou, result.image_ids, strict=True) if m == m]
    scored.sort(key=lambda pair: pair[0], reverse=True)  # stable: ties keep loader order
    best = [i for _, i in scored[:count]]
    # Few images: the worst list takes what the best list left, so no image appears twice.
    worst = [i for _, i in reversed(scored[count:])][:count]
    return best, worst
