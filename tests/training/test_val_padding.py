"""DistributedSampler's padding repeats are found exactly, so DDP validation counts each image once."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from segkit.training.val_padding import padding_sampler, repeated_samples


@pytest.mark.parametrize(("n", "world"), [(7, 2), (1449, 4), (10, 4), (3, 8), (8, 2)])
def test_unflagged_samples_cover_the_split_once(n: int, world: int) -> None:
    data = TensorDataset(torch.arange(n))
    kept: list[int] = []
    for rank in range(world):
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=False)
        indices = list(sampler)
        flags = repeated_samples(sampler, 0, len(indices))
        # in batches of 3, as validation_step sees them
        batched = torch.cat(
            [
                repeated_samples(sampler, s, min(3, len(indices) - s))
                for s in range(0, len(indices), 3)
            ]
        )
        assert torch.equal(flags, batched)
        kept += [i for i, repeated in zip(indices, flags.tolist(), strict=True) if not repeated]
    assert sorted(kept) == list(range(n))


def test_padding_sampler_only_for_padding_unshuffled_distributed_samplers() -> None:
    data = TensorDataset(torch.arange(7))
    padded = DistributedSampler(data, num_replicas=2, rank=0, shuffle=False)
    assert padding_sampler(DataLoader(data, sampler=padded)) is padded
    assert padding_sampler([DataLoader(data, sampler=padded)]) is padded
    even = DistributedSampler(TensorDataset(torch.arange(8)), num_replicas=2, rank=0, shuffle=False)
    assert padding_sampler(DataLoader(data, sampler=even)) is None
    shuffled = DistributedSampler(data, num_replicas=2, rank=0, shuffle=True)
    assert padding_sampler(DataLoader(data, sampler=shuffled)) is None
    assert padding_sampler(DataLoader(data)) is None
    assert padding_sampler(None) is None
