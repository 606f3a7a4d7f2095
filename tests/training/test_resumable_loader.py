"""The training loader's checkpointed position (segkit.data.datamodule.ResumableDataLoader): it
continues an interrupted epoch where it stopped, or starts the next epoch, as Lightning's loop says."""

from __future__ import annotations

import torch

from segkit.data.datamodule import EpochRandomSampler, ResumableDataLoader

N, BATCH = 12, 2  # 6 batches per epoch


def _loader(seed: int = 0) -> ResumableDataLoader:
    data = list(range(N))
    sampler = EpochRandomSampler(data, generator=torch.Generator().manual_seed(seed))
    return ResumableDataLoader(data, batch_size=BATCH, sampler=sampler, drop_last=True)


def _epoch(loader: ResumableDataLoader, epoch: int, limit: int | None = None) -> list[list[int]]:
    loader.batch_sampler.sampler.set_epoch(epoch)  # what Lightning does before each epoch
    out = []
    for batch in loader:
        out.append(batch.tolist())
        if limit is not None and len(out) == limit:
            break
    return out


def test_straight_epochs_are_shuffled_differently() -> None:
    loader = _loader()
    assert loader.batch_size == BATCH and loader.drop_last
    e0, e1 = _epoch(loader, 0), _epoch(loader, 1)
    assert len(e0) == len(e1) == N // BATCH and e0 != e1
    assert sorted(sum(e0, [])) == list(range(N))


def test_mid_epoch_state_continues_the_epoch_then_the_next() -> None:
    straight = _loader()
    e0, e1 = _epoch(straight, 0), _epoch(straight, 1)
    stopped = _loader()
    assert _epoch(stopped, 0, limit=2) == e0[:2]
    state = stopped.state_dict()
    assert state["epoch"] == 0 and state["consumed"] == 2
    resumed = _loader(seed=123)  # another seed: the state alone decides
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state  # saved again before any batch: unchanged
    assert _epoch(resumed, 0) == e0[2:]  # the rest of epoch 0, the first two never loaded
    assert _epoch(resumed, 1) == e1


def test_epoch_cut_short_by_lightning_starts_the_next_epoch() -> None:
    """limit_train_batches=3: Lightning ends each epoch after 3 batches, a checkpoint then resumes
    with the next epoch (set_epoch(1)), which must be epoch 1's order, not epoch 0's remainder."""
    straight = _loader()
    _epoch(straight, 0, limit=3)
    e1 = _epoch(straight, 1, limit=3)
    stopped = _loader()
    _epoch(stopped, 0, limit=3)
    resumed = _loader()
    resumed.load_state_dict(stopped.state_dict())
    assert _epoch(resumed, 1, limit=3) == e1


def test_len_is_the_whole_epoch_while_resuming() -> None:
    stopped = _loader()
    _epoch(stopped, 0, limit=4)
    resumed = _loader()
    resumed.load_state_dict(stopped.state_dict())
    assert len(resumed) == N // BATCH  # Lightning counts the epoch's batches from len()
    assert len(_epoch(resumed, 0)) == N // BATCH - 4
