"""The evaluation loader: same-size batches (``segkit.data.batching``), nothing padded.

Each image is scored exactly as if it were evaluated alone, whatever ``eval.batch_size``, the
number of processes, or whether the numbers come from ``evaluate`` or from training-time
validation (``SegDataModule.val_dataloader`` batches by the same rule). Each batch carries
``"index"``: the (B,) int64 dataset positions of its images, which key the per-image results
(``Evaluator``) so that they come out in split-list order however the images were batched or
shared out among processes (``shard``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import DataLoader

from segkit.checks import check_batch_size
from segkit.data.batching import (
    image_sizes,
    indexed_collate,
    same_size_batches,
    same_size_loader,
    shard,
)
from segkit.data.split import SegSplit


def eval_loader(
    dataset: SegSplit,
    *,
    batch_size: int,
    indices: Sequence[int] | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader of same-size batches of at most ``batch_size`` images (plus ``"index"``) over
    ``indices`` (default: all) of ``dataset``; with ``world_size > 1`` only this ``rank``'s share
    (:func:`shard`: whole batches of the single-process run, dealt out in turn)."""
    check_batch_size(batch_size, "batch_size")
    indices = list(range(len(dataset))) if indices is None else list(indices)
    batches = same_size_batches(indices, image_sizes(dataset, indices), batch_size)
    return same_size_loader(
        dataset,
        batches,
        rank=rank,
        world_size=world_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )


__all__ = ["eval_loader", "image_sizes", "indexed_collate", "same_size_batches", "shard"]
