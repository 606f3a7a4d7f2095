"""The evaluation loop: a dataloader of uint8 batches -> confusion matrices (global, trimap, per image).

Everything stays on the device until the loop ends: per batch one inference of the uint8 images (the
model normalises them) and one ``SegConfusion.update`` (trimap level map + one ``bincount`` + the
boundary F1 maps). Padding (mask 255 from ``pad_collate``) never counts. Under torch.distributed each rank evaluates its own batches and
``result`` reduces the matrices of all ranks (the metric's sync), so every rank returns the answer of
the whole split, per-image matrices ordered by the batches' ``index`` (the split-list position from
``eval_loader``) whatever the sharding or batching.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from segkit.evaluation.counting import miou_of_matrices
from segkit.evaluation.drawn import BestWorstKeeper
from segkit.evaluation.inference import InferenceSettings, infer
from segkit.evaluation.metrics import SegConfusion, scores_from_confusion


@dataclass
class EvalResult:
    """What an evaluation produced: the summed matrices and per-image mIoU.

    Attributes:
        confusion: (K, K) int64 pixel counts, rows = ground truth (on the CPU).
        trimap: {band width: (K, K) confusion matrix of the pixels in that band}.
        image_ids: ids ordered by image index (split-list order with ``eval_loader``);
            ``image_miou`` holds their per-image mIoU (NaN if no valid pixel).
        num_images: images evaluated (over all ranks).
        image_confusion: (N, K, K) int64 per-image matrices in ``image_ids`` order (their sum is
            ``confusion``); what a paired bootstrap over images resamples.
        image_trimap: (N, W, K, K) int64 per-image matrices of each trimap band (widths in
            ``sorted(trimap)`` order; summed over images they give ``trimap``), or None.
        image_bf: (N, K) float64 boundary F1 of each image and class (``segkit.evaluation.
            boundary``; NaN where the class is not in the image's ground truth), or None.
    """

    confusion: Tensor
    trimap: dict[int, Tensor] = field(default_factory=dict)
    image_ids: list[str] = field(default_factory=list)
    image_miou: list[float] = field(default_factory=list)
    num_images: int = 0
    image_confusion: Tensor | None = None
    image_trimap: Tensor | None = None
    image_bf: Tensor | None = None

    def scores(self) -> dict[str, Any]:
        """mIoU, pixel_acc, mean_class_acc, fw_IoU, per_class_iou/acc (see ``scores_from_confusion``)
        and, when scored, ``BF`` (mean over images of their boundary F1) and ``per_class_bf``."""
        out = scores_from_confusion(self.confusion)
        if self.image_bf is not None:
            out["BF"] = float(self.image_bf_mean().nanmean())
            out["per_class_bf"] = self.image_bf.nanmean(0).tolist()
        return out

    def image_bf_mean(self) -> Tensor:
        """(N,) each image's BF: the mean over the classes of its ground truth (NaN if none)."""
        if self.image_bf is None:
            raise ValueError("this evaluation scored no boundary F1")
        return self.image_bf.nanmean(1)

    def trimap_miou(self) -> dict[int, float]:
        """{band width: mIoU restricted to that band}."""
        return {w: float(scores_from_confusion(cm)["mIoU"]) for w, cm in self.trimap.items()}


class Evaluator:
    """Accumulates the metrics of one model over batches; reduced across DDP ranks in ``result``.

    Args:
        model: a Segmentor-like module (put in eval mode and left on ``device``).
        num_classes: K.
        settings: inference mode / scales / flip / window.
        trimap_widths: band widths (pixels) for the trimap curve; empty = no trimap.
        device: where inference and accumulation happen.
        boundary: also score the boundary F1 (per image, ``EvalResult.image_bf``).
        image_ids: ``image_ids[i]`` = id of the image a batch's ``index`` i names (the dataset's
            split list): with it, images are named by their index alone (a batch's ``"id"`` is
            not read). Needed under torch.distributed, where a rank has not seen the other ranks'
            images; without it the ids come with the batches.
        keep_best_worst: N > 0 keeps, during the pass, the predictions (uint8 maps on the host) of
            the images that may end up among the N best or worst (``best_and_worst``), so they
            can be drawn without predicting them again (``kept_predictions``).

    A batch may carry ``"index"``: (B,) int64 CPU keys of its images (``eval_loader`` adds the
    dataset positions); without it images are numbered in arrival order (one process only).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        num_classes: int,
        settings: InferenceSettings,
        trimap_widths: Sequence[int] = (),
        device: torch.device | str = "cpu",
        image_ids: Sequence[str] | None = None,
        boundary: bool = True,
        keep_best_worst: int = 0,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.num_classes = num_classes
        self.settings = settings
        self.metric = SegConfusion(
            num_classes, trimap_widths=trimap_widths, per_image=True, boundary=boundary
        )
        self.metric.to(self.device)
        self.image_ids = None if image_ids is None else list(image_ids)
        self._seen: dict[int, str] = {}  # image key -> id, of the images this process evaluated
        self._keeper = (
            BestWorstKeeper(keep_best_worst, num_classes) if keep_best_worst > 0 else None
        )

    def predict(self, image_uint8: Tensor) -> Tensor:
        """uint8 (B, 3, H, W) on any device -> (B, H, W) int64 predictions on ``device``."""
        image = image_uint8.to(self.device, non_blocking=True)
        scores = infer(self.model, image, self.settings)
        if scores.shape[1] != self.num_classes:  # a shape: known on the host, no device sync
            raise ValueError(
                f"the model predicts {scores.shape[1]} classes but the evaluation expects "
                f"{self.num_classes} (Evaluator's num_classes)"
            )
        return scores.argmax(1)

    @torch.inference_mode()
    def update(self, batch: dict[str, Any]) -> None:
        """Add one batch ``{"image": uint8 (B,3,H,W), "mask": uint8|int64 (B,H,W), "id": [...]
        [, "index": (B,) int64]}``."""
        pred = self.predict(batch["image"])
        # uint8 masks (pad_collate) cross the bus 8x smaller than int64; the trimap works on them
        # as they are and joint_counts widens them on the device.
        mask = batch["mask"].to(self.device, non_blocking=True)
        ids = list(batch["id"])
        keys = batch.get("index")
        if keys is None:  # arrival order, made on the device (no host-to-device copy)
            start = len(self._seen)
            index = torch.arange(start, start + len(ids), device=self.device)
            keys = range(start, start + len(ids))
        else:  # a CPU tensor (pinned by the loader on CUDA): reading it needs no device sync
            index = keys.to(self.device, non_blocking=True)
            keys = keys.tolist()
            if self.image_ids is not None:  # named by the dataset index only
                ids = [self.image_ids[k] for k in keys]
        self._seen.update(zip(keys, ids, strict=True))
        self.metric.update(pred, mask, index)
        if self._keeper is not None:
            self._keeper.add(keys, self.metric.last_image_matrices(), pred)

    def kept_predictions(self, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """The kept (H, W) predictions (as scored; uint8) of those of ``ids`` this process
        evaluated and kept (``keep_best_worst``): every one of the ``best_and_worst`` lists of its
        images. Empty without ``keep_best_worst``."""
        if self._keeper is None:
            return {}
        key_of = {image_id: key for key, image_id in self._seen.items()}
        wanted = {key_of[i]: i for i in ids if i in key_of}
        return {wanted[k]: m for k, m in self._keeper.maps(wanted).items()}

    def run(self, batches: Iterable[dict[str, Any]]) -> EvalResult:
        """Evaluate every batch, reduce across ranks, return the result (moved to the CPU once)."""
        for batch in batches:
            self.update(batch)
        return self.result()

    def result(self) -> EvalResult:
        """The matrices of all ranks (a collective under torch.distributed: every rank calls it)."""
        with warnings.catch_warnings():
            if not self.metric.update_called:  # a rank without batches still joins the reduction
                warnings.filterwarnings("ignore", "The ``compute`` method", UserWarning)
            out = self.metric.compute()
        keys = out.image_index.cpu().tolist()
        repeated = sorted({k for k, n in zip(keys, keys[1:], strict=False) if k == n})
        if repeated:
            raise ValueError(
                f"images {[self._id(k) for k in repeated[:5]]} were evaluated more than once: "
                "each image must be in one batch of one rank (under torch.distributed, give the "
                "batches their dataset 'index', as segkit.evaluation.eval_loader does)"
            )
        per_image = out.image_matrix.cpu()
        return EvalResult(
            confusion=out.matrix.cpu(),
            trimap={w: cm for w, cm in zip(out.widths, out.trimap.cpu(), strict=True)},
            image_ids=[self._id(k) for k in keys],
            image_miou=miou_of_matrices(per_image).tolist(),
            num_images=len(keys),
            image_confusion=per_image,
            image_trimap=out.image_trimap.cpu() if out.widths else None,
            image_bf=None if out.image_bf is None else out.image_bf.cpu(),
        )

    def _id(self, key: int) -> str:
        if key in self._seen:
            return self._seen[key]
        if self.image_ids is None or not 0 <= key < len(self.image_ids):
            raise ValueError(
                f"image index {key} came from another rank and no image_ids were given to the "
                "Evaluator to name it (pass the dataset's ids)"
            )
        return self.image_ids[key]


def best_and_worst(result: EvalResult, count: int) -> tuple[list[str], list[str]]:
    """Ids of the ``count`` highest- and lowest-mIoU images (images without valid pixels skipped)."""
    if count <= 0:
        return [], []
    scored = [(m, i) for m, i in zip(result.image_miou, result.image_ids, strict=True) if m == m]
    scored.sort(key=lambda pair: pair[0], reverse=True)  # stable: ties keep image order
    best = [i for _, i in scored[:count]]
    # Few images: the worst list takes what the best list left, so no image appears twice.
    worst = [i for _, i in reversed(scored[count:])][:count]
    return best, worst
