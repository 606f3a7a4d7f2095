"""The training loader, resumable mid-epoch (:class:`ResumableDataLoader`), its samplers and the
workers' seeding (:func:`seed_worker`); ``SegDataModule`` builds its train loader from them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler


def seed_worker(worker_id: int) -> None:
    """Reseed the dataset's albumentations transform from the worker's torch seed.

    Torch derives each worker's seed from the DataLoader generator, so with a seeded generator the
    augmentations are reproducible and differ between workers (forked workers would otherwise share
    the transform's generator state and produce identical crops).
    """
    seed = torch.initial_seed() % 2**32
    info = torch.utils.data.get_worker_info()
    transform = getattr(info.dataset, "transform", None) if info is not None else None
    if transform is not None and hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)


class EpochRandomSampler(RandomSampler):
    """A ``RandomSampler`` that records the epoch Lightning announces (``set_epoch``, as it does
    for a ``DistributedSampler``), so a resumed loader can tell the interrupted epoch from a new one."""

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class SkippingBatchSampler(BatchSampler):
    """A ``BatchSampler`` whose next epoch can start ``skip`` batches in: the indices of the batches
    already trained on are drawn (same permutation) and dropped, their images are never loaded."""

    def __init__(self, sampler: Any, batch_size: int, drop_last: bool) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        return itertools.islice(super().__iter__(), skip, None)


class ResumableDataLoader(DataLoader):
    """The training ``DataLoader`` with Lightning's stateful-loader protocol (``state_dict`` /
    ``load_state_dict``, saved in every checkpoint under the fit loop's state), so a resume from
    any step, mid-epoch too, continues the batch sequence where it stopped.

    Takes the usual ``sampler`` / ``batch_size`` / ``drop_last`` and batches through a
    :class:`SkippingBatchSampler` (Lightning re-makes that one around the ``DistributedSampler`` it
    injects under DDP, and passes it back as ``batch_sampler``). The state holds the sampler epoch,
    the batches handed out in it, the sampler generator's state at the start of that epoch and now,
    and (``num_workers=0``) the random state of the dataset's augmentation transform. On resume the
    choice between "finish the saved epoch" and "start the next one" is made when the first batch
    is requested, after Lightning has announced the epoch with ``set_epoch``. Limit: with worker
    processes, augmentation draws happen in the workers and are not captured (the batch order is
    still exact).

    Kept rather than torchdata's ``StatefulDataLoader`` (Lightning drives both through the same
    protocol, so that would only swap the object it calls): that loader fast-forwards by counting
    batches and restores a sampler's or dataset's state only if they implement one, so the shuffle
    generator, the augmentation streams and the finish-or-next-epoch choice would still be ours,
    plus a dependency.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        *,
        sampler: Any = None,
        drop_last: bool = False,
        batch_sampler: BatchSampler | None = None,
        **kwargs: Any,
    ) -> None:
        if batch_sampler is None:
            sampler = SequentialSampler(dataset) if sampler is None else sampler
            batch_sampler = SkippingBatchSampler(sampler, int(batch_size or 1), drop_last)
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        # With a batch sampler, DataLoader records batch_size=None / drop_last=False; report the
        # real ones (read-only attributes after __init__, hence object.__setattr__).
        object.__setattr__(self, "batch_size", batch_sampler.batch_size)
        object.__setattr__(self, "drop_last", batch_sampler.drop_last)
        self._consumed = 0
        self._epoch_start: torch.Tensor | None = None
        self._pending: dict[str, Any] | None = None

    def _sampler(self) -> Any:
        return getattr(self.batch_sampler, "sampler", None)

    def _generator(self) -> torch.Generator | None:
        generator = getattr(self._sampler(), "generator", None)
        return generator if isinstance(generator, torch.Generator) else None

    def __iter__(self) -> Iterator[Any]:
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        # A generator: this runs at the first next(), after Lightning's set_epoch for this epoch.
        self._resume_position()
        generator = self._generator()
        self._epoch_start = None if generator is None else generator.get_state()
        self._consumed = getattr(self.batch_sampler, "skip", 0)
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def _resume_position(self) -> None:
        state, self._pending = self._pending, None
        if state is None:
            return
        generator = self._generator()
        same_epoch = state["epoch"] == getattr(self._sampler(), "epoch", None)
        if same_epoch and 0 < state["consumed"] < len(self):
            self.batch_sampler.skip = state["consumed"]  # type: ignore[union-attr]
            gen_state = state["epoch_start"]
        else:
            gen_state = state["generator"]
        if generator is not None and gen_state is not None:
            generator.set_state(gen_state)
        if "transform_np" in state:
            _set_transform_state(getattr(self.dataset, "transform", None), state)

    def state_dict(self) -> dict[str, Any]:
        if self._pending is not None:  # saved again before the first batch: nothing changed
            return dict(self._pending)
        generator = self._generator()
        state: dict[str, Any] = {
            "epoch": getattr(self._sampler(), "epoch", None),
            "consumed": self._consumed,
            "epoch_start": self._epoch_start,
            "generator": None if generator is None else generator.get_state(),
        }
        if self.num_workers == 0:
            state.update(_transform_state(getattr(self.dataset, "transform", None)))
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict)


def _random_nodes(transform: Any) -> list[Any]:
    """The transform and its nested ``transforms`` that hold their own random generators
    (albumentations gives every transform of a ``Compose`` a ``random_generator`` and a
    ``py_random``), in a fixed traversal order."""
    nodes: list[Any] = []
    stack = [transform] if transform is not None else []
    while stack:
        node = stack.pop(0)
        if hasattr(node, "random_generator") and hasattr(node, "py_random"):
            nodes.append(node)
        stack.extend(getattr(node, "transforms", None) or [])
    return nodes


def _transform_state(transform: Any) -> dict[str, Any]:
    nodes = _random_nodes(transform)
    return {
        "transform_np": [n.random_generator.bit_generator.state for n in nodes],
        "transform_py": [n.py_random.getstate() for n in nodes],
    }


def _set_transform_state(transform: Any, state: dict[str, Any]) -> None:
    nodes = _random_nodes(transform)
    if len(nodes) != len(state["transform_np"]):
        return  # another augmentation pipeline: the saved streams map onto nothing
    for node, np_state, py_state in zip(
        nodes, state["transform_np"], state["transform_py"], strict=True
    ):
        node.random_generator.bit_generator.state = np_state
        node.py_random.setstate(py_state)


__all__ = ["EpochRandomSampler", "ResumableDataLoader", "SkippingBatchSampler", "seed_worker"]
