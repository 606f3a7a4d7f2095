"""Evaluation batches of similar-sized images: less padding, so less wasted computation.

Whole-image batches are padded to their largest image (``pad_collate``). In loader order a batch of
Pascal VOC val mixes 500x375 landscapes and 375x500 portraits and is padded to 500x500: about a third
of the pixels the network computes are padding. Ordering the images by size before batching puts
equal sizes together (VOC val: almost no padding left). Image sizes come from the file headers, so no
image is decoded twice. The metrics do not depend on the order; images of one batch still share
padding, which models with image-level pooling see (docs/metrics.md), and with less padding the
results come closer to batch-1 evaluation.

Each batch also carries ``"index"``: the (B,) int64 dataset positions of its images, which key the
per-image results (``Evaluator``) so that they come out in split-list order however the images were
batched or shared out among processes (``shard``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from segkit.checks import check_batch_size
from segkit.data import SplitDataset, pad_collate
from segkit.data.io import read_image_size


def image_sizes(dataset: SplitDataset, indices: Sequence[int]) -> list[tuple[int, int]]:
    """``(H, W)`` of the images ``indices`` of ``dataset``, from the file headers (no decoding)."""
    return [read_image_size(dataset.image_path(dataset.ids[index])) for index in indices]


def size_sorted_batches(
    indices: Sequence[int], sizes: Sequence[tuple[int, int]], batch_size: int
) -> list[list[int]]:
    """``indices`` ordered by image ``(H, W)`` (stable: equal sizes keep their order), then cut into
    batches of ``batch_size`` (the last one may be shorter)."""
    if len(indices) != len(sizes):
        raise ValueError(f"{len(indices)} indices but {len(sizes)} sizes")
    check_batch_size(batch_size, "eval.batch_size")
    order = [i for _, i in sorted(zip(sizes, range(len(indices)), strict=True))]
    ranked = [indices[i] for i in order]
    return [ranked[s : s + batch_size] for s in range(0, len(ranked), batch_size)]


def shard(batches: Sequence[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """The batches rank ``rank`` of ``world_size`` evaluates: every ``world_size``-th one.

    Whole batches, not images, are shared out, so each rank's batches are exactly batches of a
    single-process run (same images, same padding): the metrics summed over ranks equal the
    single-process ones also for models with image-level context. Ranks differ by at most one
    batch; a rank may get none.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return list(batches[rank::world_size])


def eval_loader(
    dataset: SplitDataset,
    *,
    batch_size: int,
    indices: Sequence[int] | None = None,
    sort_by_size: bool = True,
    num_workers: int = 0,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader of ``pad_collate`` batches (plus ``"index"``) over ``indices`` (default: all)
    of ``dataset``; with ``world_size > 1`` only this ``rank``'s share (:func:`shard`).

    ``sort_by_size``: batch images of similar size together (see the module docstring); otherwise
    loader order. Batch size 1 never sorts (nothing is padded).
    """
    check_batch_size(batch_size, "eval.batch_size")
    indices = list(range(len(dataset))) if indices is None else list(indices)
    if sort_by_size and batch_size > 1:
        batches = size_sorted_batches(indices, image_sizes(dataset, indices), batch_size)
    else:
        batches = [indices[s : s + batch_size] for s in range(0, len(indices), batch_size)]
    return DataLoader(
        _Indexed(dataset),
        batch_sampler=shard(batches, rank, world_size),
        num_workers=num_workers,
        collate_fn=indexed_collate,
        pin_memory=pin_memory,
    )


class _Indexed(Dataset):
    """``dataset`` whose samples also hold their position (``"index"``)."""

    def __init__(self, dataset: SplitDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.dataset[index], "index": index}


def indexed_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``pad_collate`` plus ``"index"``: (B,) int64 of the samples' dataset positions."""
    batch = pad_collate(samples)
    batch["index"] = torch.tensor([int(s["index"]) for s in samples], dtype=torch.int64)
    return batch


__all__ = ["eval_loader", "image_sizes", "indexed_collate", "shard", "size_sorted_batches"]
