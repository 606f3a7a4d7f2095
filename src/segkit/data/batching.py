"""Batches of equal-sized whole images: each image is scored exactly as if it were alone.

Padding an image to the size of its batch-mates changes what the network computes for it: near its
bottom and right border every conv reads the network's activations over the padding (not zero after
the first layer) where, alone, it would read its own zero padding, and image-level pooling averages
over the padding too. One FCN-8s checkpoint scored 46.07 mIoU at batch
1, 46.47 in size-sorted batches of 8 and 47.39 in the unsorted batches of 20 its training validated
with. So evaluate, training-time validation and predict all batch the same way: images are grouped
by ``(H, W)`` -- read from the file headers, nothing decoded, EXIF turns counted (``image_sizes``) --
and each group is
cut into batches of at most ``batch_size`` (``same_size_batches``). Nothing is ever padded, and a
batch of equal-sized images gives each image the logits of its batch-1 forward (up to the last bits
of float summation order, which leave the argmax alone in practice: tested exactly equal).

Same-size batches are also the fastest padding-free choice (VOC val: 500x375 and 375x500 images fill
their own batches); a split whose images all differ in size runs at batch 1.

Under several processes whole batches are dealt out in turn (``shard``; the loader uses Lightning's
``UnrepeatedDistributedSampler`` over batch positions, the same rule), so every image is scored once,
inside the batch a single process would have put it in. Each batch also carries ``"index"``: the
(B,) int64 dataset positions of its images, which key per-image results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from segkit.checks import check_batch_size
from segkit.data.collate import stack_collate
from segkit.data.io import read_image_size
from segkit.data.split import SegSplit


def image_sizes(dataset: SegSplit, indices: Sequence[int]) -> list[tuple[int, int]]:
    """``(H, W)`` of the images ``indices`` of ``dataset``, from the file headers (no decoding)."""
    return [read_image_size(dataset.image_path(dataset.ids[index])) for index in indices]


def same_size_batches(
    indices: Sequence[int],
    sizes: Sequence[tuple[int, int]],
    batch_size: int,
    *,
    key: str = "batch_size",
) -> list[list[int]]:
    """``indices`` grouped by image ``(H, W)``, each group cut into batches of at most
    ``batch_size``. Groups come in the order of their first image and keep split-list order inside,
    so the first batches (``trainer.limit_val_batches``) are not the smallest images. ``key``
    names the setting in the error for a bad batch size."""
    if len(indices) != len(sizes):
        raise ValueError(f"{len(indices)} indices but {len(sizes)} sizes")
    check_batch_size(batch_size, key)
    groups: dict[tuple[int, int], list[int]] = {}
    for index, size in zip(indices, sizes, strict=True):
        groups.setdefault((int(size[0]), int(size[1])), []).append(index)
    return [
        group[start : start + batch_size]
        for group in groups.values()
        for start in range(0, len(group), batch_size)
    ]


def shard(batches: Sequence[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """The batches rank ``rank`` of ``world_size`` runs: every ``world_size``-th one.

    Whole batches, not images, are shared out, so each rank's batches are batches of the
    single-process run and the summed metrics are the single-process ones. Ranks differ by at most
    one batch; a rank may get none.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return list(batches[rank::world_size])


def same_size_loader(
    dataset: Dataset,
    batches: Sequence[list[int]],
    *,
    rank: int = 0,
    world_size: int = 1,
    collate_fn: Callable[[Sequence[dict[str, Any]]], dict[str, Any]] | None = None,
    **loader_kwargs: Any,
) -> DataLoader:
    """A DataLoader of the ``batches`` (lists of positions in ``dataset``: a split, or any dataset
    of sample dicts such as predict's input files; e.g. ``same_size_batches``) that fall to
    ``rank`` of ``world_size`` (``shard``'s rule), as ``stack_collate`` batches plus ``"index"``
    (``collate_fn``: another collate of the samples, each carrying its ``"index"``).
    ``loader_kwargs``: ``num_workers``, ``pin_memory``, ``worker_init_fn``...

    Each item of the loader is one whole batch (``batch_size=None``). Under several processes the
    sampler is Lightning's ``UnrepeatedDistributedSampler`` over batch positions: a
    ``DistributedSampler``, so Lightning keeps it rather than injecting one that would share out
    (and repeat) images.
    """
    batched = _Batches(dataset, [list(b) for b in batches])
    sampler = None
    if world_size > 1:
        # Imported here: evaluate and predict on one process never load Lightning.
        from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler

        sampler = UnrepeatedDistributedSampler(
            batched, num_replicas=world_size, rank=rank, shuffle=False
        )
    elif rank != 0:
        raise ValueError(f"rank {rank} is not in 0..0")
    return DataLoader(
        batched,
        batch_size=None,
        sampler=sampler,
        collate_fn=collate_fn or indexed_collate,
        **loader_kwargs,
    )


class _Batches(Dataset):
    """Item ``i``: the samples of batch ``i`` of ``dataset``, each with its position ``"index"``."""

    def __init__(self, dataset: Dataset, batches: list[list[int]]) -> None:
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> list[dict[str, Any]]:
        return [{**self.dataset[index], "index": index} for index in self.batches[i]]


def loader_images(loader: DataLoader) -> int:
    """How many images a :func:`same_size_loader` hands out (this rank's share): a progress
    bar's total."""
    batched = loader.dataset
    if not isinstance(batched, _Batches):
        raise TypeError("loader_images takes a same_size_loader")
    positions = list(loader.sampler)  # a SequentialSampler, or this rank's share
    return sum(len(batched.batches[i]) for i in positions)


def indexed_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``stack_collate`` plus ``"index"``: (B,) int64 of the samples' dataset positions."""
    batch = stack_collate(samples)
    batch["index"] = torch.tensor([int(s["index"]) for s in samples], dtype=torch.int64)
    return batch


__all__ = [
    "image_sizes",
    "indexed_collate",
    "loader_images",
    "same_size_batches",
    "same_size_loader",
    "shard",
]
