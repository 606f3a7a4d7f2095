"""Which validation samples are DistributedSampler's padding repeats (so metrics count each once).

Under DDP, Lightning gives the validation loader a ``DistributedSampler(shuffle=False)``. When the
split size N is not a multiple of the world size W, that sampler pads its index list with repeats
of the first samples so every rank gets the same number: the index list is ``0..N-1`` followed by
``0, 1, ...`` up to a multiple of W, and rank r receives positions ``r, r + W, r + 2W, ...``. Rank
r's i-th sample is therefore a repeat exactly when ``r + i * W >= N``. VOC val (1,449 images) on 2,
4 or 8 GPUs is such a case: without this, the logged ``val/mIoU`` counts a few images twice and
differs from a single-process evaluation of the same checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler


def padding_sampler(loader: Any) -> DistributedSampler | None:
    """The loader's sampler if it is a plain, unshuffled ``DistributedSampler`` that pads (repeats
    samples); None otherwise (single process, no padding needed, or a sampler that does not pad)."""
    if isinstance(loader, (list, tuple)):
        loader = loader[0] if len(loader) == 1 else None
    sampler = getattr(loader, "sampler", None)
    if type(sampler) is not DistributedSampler:  # subclasses (e.g. unrepeated samplers) excluded
        return None
    if sampler.shuffle or sampler.drop_last:
        return None
    return sampler if sampler.total_size > len(sampler.dataset) else None  # type: ignore[arg-type]


def repeated_samples(sampler: DistributedSampler, start: int, count: int) -> Tensor:
    """(count,) bool CPU tensor: which of this rank's samples ``start .. start + count - 1`` are
    padding repeats of samples another position already holds."""
    positions = sampler.rank + sampler.num_replicas * torch.arange(start, start + count)
    return positions >= len(sampler.dataset)  # type: ignore[arg-type]


__all__ = ["padding_sampler", "repeated_samples"]
