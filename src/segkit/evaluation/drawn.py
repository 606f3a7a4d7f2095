"""The predictions of the images ``evaluate`` draws (``overlays.png``), kept during its one pass.

The drawn images are the ``count`` best and the ``count`` worst by per-image mIoU
(``evaluator.best_and_worst``: mIoU descending, ties in image order, images without a valid pixel
left out), known only once every image is scored. An image's place in that order depends on its
own score and index alone, so an image among the first (last) ``count`` of the whole split is also
among the first (last) ``count`` of any subset that holds it. ``BestWorstKeeper`` therefore keeps,
of the images it has seen, only those first and last ``count``: at most ``2 * count`` label maps
plus one batch, and every image drawn in the end is among them. Under torchrun each rank keeps the
candidates of its own images; the few drawn maps are gathered to rank 0 afterwards.

A kept map is the very prediction the metric scored (whatever the backend and inference mode),
moved to host memory as uint8 (int16 beyond 256 classes). On CUDA the copies are asynchronous
and a batch is sorted in once the next batch has been queued, so the loop gains no per-batch
host sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from segkit.evaluation.counting import miou_of_matrices


class BestWorstKeeper:
    """Keeps the label maps that can still be among the ``count`` best or worst images.

    ``add(keys, matrices, pred)`` per batch: image keys (B,) (the dataset index), their (B, K, K)
    confusion matrices and (B, H, W) class predictions, on any device. ``maps(keys)`` returns the
    kept maps of those keys, (H, W) numpy arrays.
    """

    def __init__(self, count: int, num_classes: int) -> None:
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.count = count
        self.dtype = torch.uint8 if num_classes <= 256 else torch.int16
        self._kept: dict[int, tuple[float, Tensor]] = {}  # key -> (mIoU, map on the host)
        self._pending: list[tuple[list[int], Tensor, Tensor, torch.cuda.Event | None]] = []

    def add(self, keys: Sequence[int], matrices: Tensor, pred: Tensor) -> None:
        """Queue one batch; the earlier queued batches are sorted in now."""
        matrices = matrices.to("cpu", non_blocking=True)
        maps = pred.to(self.dtype).to("cpu", non_blocking=True)
        event = None
        if pred.is_cuda:  # the copies land in pinned memory; the event says when
            event = torch.cuda.Event()
            event.record()
        self._settle()
        self._pending.append((list(keys), matrices, maps, event))

    def maps(self, keys: Iterable[int]) -> dict[int, np.ndarray]:
        """The kept maps of ``keys`` (those not kept are left out)."""
        self._settle()
        return {k: self._kept[k][1].numpy() for k in keys if k in self._kept}

    def _settle(self) -> None:
        for keys, matrices, maps, event in self._pending:
            if event is not None:
                event.synchronize()
            # the score best_and_worst sorts by: the same function on the same int64 matrices
            scores = miou_of_matrices(matrices).tolist()
            for key, score, label_map in zip(keys, scores, maps, strict=True):
                if score == score:  # NaN: no valid pixel, never drawn
                    self._kept[key] = (score, label_map.clone())  # not a view of the batch
        self._pending.clear()
        self._prune()

    def _prune(self) -> None:
        order = sorted(self._kept, key=lambda k: (-self._kept[k][0], k))
        keep = set(order[: self.count]) | set(order[-self.count :])
        for key in order:
            if key not in keep:
                del self._kept[key]


__all__ = ["BestWorstKeeper"]
