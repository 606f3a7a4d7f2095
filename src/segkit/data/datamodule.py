"""``SegDataModule``: any registered dataset (``segkit.data.registry``) behind one LightningDataModule."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from segkit.checks import check_batch_size, check_num_workers
from segkit.data.batching import image_sizes, same_size_batches, same_size_loader
from segkit.data.check import LEVELS, check_datasets
from segkit.data.classes import ClassInfo
from segkit.data.collate import pad_collate
from segkit.data.registry import (
    OnRepeat,
    SplitDataset,
    dataset_entry,
    reader_locate,
    reader_options,
    reader_prepare,
)
from segkit.data.synthetic import SyntheticSpec
from segkit.data.transforms import build_train_transform
from segkit.progress import progress

log = logging.getLogger(__name__)

CheckLevel = Literal["full", "headers", "off"]


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


class SegDataModule(pl.LightningDataModule):
    """Training / validation data for segkit; batches follow the data contract.

    Batches: ``{"image": uint8 (B, 3, H, W), "mask": uint8 (B, H, W) with 255 = void/pad,
    "id": list[str]}``; ``on_after_batch_transfer`` turns ``image`` into float32 normalised on the
    device and ``mask`` into int64 there (what the loss and the metrics index with).

    The dataset is looked up in ``segkit.data.registry`` by name; its reader provides the class
    metadata (``classes``: names, palette, void) and builds the splits. Nothing here depends on
    which dataset it is.

    Args:
        dataset: a registered name (``segkit.data.registry.dataset_names()``): ``"voc"`` (VOC train
            / val), ``"voc_aug"`` (trainaug / VOC val, needs SBD), ``"synthetic"`` (generated on
            first use), ``"folder"`` (your own images and masks, ``data/README.md``), ...
        root: the dataset's folder, as its reader documents it (VOC: the folder holding
            ``VOCdevkit/VOC2012``; synthetic: the parent of the per-spec folders, ``self.root``
            is then ``root/<synthetic_folder_name(spec)>``).
        num_classes: the dataset's class count, or None to take it from the dataset; a number
            that differs from the dataset's is refused (the model configs interpolate
            ``${data.num_classes}``; the train task fills a null from here).
        crop_size: square training crop; val uses whole images, in batches of one size
            (``segkit.data.batching``: never padded, the batching evaluate uses).
        scale_range: (min, max) random rescale factor for training.
        batch_size, val_batch_size: per-step batch sizes (train drops the last incomplete batch;
            a val batch holds at most ``val_batch_size`` images of one size).
        num_workers: DataLoader workers (persistent when > 0).
        pin_memory: pin host memory for faster device copies.
        hflip, color_jitter: augmentation switches (see ``build_train_transform``).
        seed: seeds the train shuffling, the workers' augmentation streams and (for num_workers=0)
            the transform itself.
        options: the reader's options (a mapping of its ``Options`` fields, or an ``Options``
            object), e.g. the folder dataset's folders, classes file and split.
        synthetic: the options of ``dataset="synthetic"`` (a SyntheticSpec); kept as its own key
            so ``data.synthetic.*`` overrides work. Refused for another dataset.
        inference: the dataset's default inference for evaluate and predict, as ``eval.*`` keys
            (``mode``, ``window``, ``stride``, ``scales``, ``flip``), e.g. Cityscapes' sliding
            window over its 1024x2048 images; an ``eval.*`` / ``predict.*`` key set to a value
            wins (``segkit.tasks.inference_opts``). Not used by training-time validation.
        check: before the datasets are first used, check every sample of the train and val splits
            (``segkit.data.check``) and fail with the list of defects, so a corrupt val image stops
            the run before training rather than at the first validation. ``"full"`` decodes every
            image and mask (VOC-sized train + val: 3.8 CPU-s, docs/benchmarks.md); ``"headers"``
            reads image headers only (2.7x less CPU; a truncated image body then fails when it is
            loaded); ``"off"`` skips it. Runs once, on global rank 0, with ``max(1, num_workers)``
            threads.

    Attributes:
        classes: the dataset's ClassInfo; ``class_names`` and ``num_classes`` are its own.
    """

    def __init__(
        self,
        *,
        dataset: str = "voc",
        root: str | Path = "data",
        num_classes: int | None = None,
        crop_size: int = 513,
        scale_range: Sequence[float] = (0.5, 2.0),
        batch_size: int = 16,
        val_batch_size: int = 4,
        num_workers: int = 4,
        pin_memory: bool = True,
        hflip: bool = True,
        color_jitter: float = 0.0,
        seed: int = 0,
        options: Any = None,
        synthetic: SyntheticSpec | None = None,
        check: CheckLevel = "full",
        inference: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.entry = dataset_entry(dataset)
        check_batch_size(batch_size, "data.batch_size")
        check_batch_size(val_batch_size, "data.val_batch_size")
        check_num_workers(num_workers, "data.num_workers")
        if check not in (*LEVELS, "off"):
            raise ValueError(f"data.check must be full, headers or off, got {check!r}")
        if synthetic is not None:
            if dataset != "synthetic":
                raise ValueError(
                    f"data.synthetic is set but data.dataset={dataset}: set data.synthetic=null"
                )
            if options is not None:
                raise ValueError("data.synthetic and data.options are both set: keep one")
            options = synthetic
        self.options = reader_options(self.entry, options)
        self.reader = self.entry.module()
        self.data_root = Path(root)
        self.classes: ClassInfo = self.reader.classes(self.data_root, self.options)
        if num_classes is not None and num_classes != self.classes.num_classes:
            raise ValueError(
                f"data.num_classes={num_classes} but {self.entry.summary} has "
                f"{self.classes.num_classes} classes: set data.num_classes="
                f"{self.classes.num_classes} (or null, to take the dataset's)"
            )
        self.dataset = dataset
        self.num_classes = self.classes.num_classes
        self.class_names: tuple[str, ...] = self.classes.names
        self.root = reader_locate(self.entry, self.data_root, self.options)
        self.synthetic = synthetic
        self.crop_size, self.scale_range = int(crop_size), tuple(float(s) for s in scale_range)
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.hflip, self.color_jitter, self.seed = hflip, color_jitter, seed
        self.check = check
        self.inference = dict(inference or {})
        self.checked = False
        self.train_set: SplitDataset | None = None
        self.val_set: SplitDataset | None = None
        # (dataset, (H, W) of each of its images from the file headers): read once per val set
        self._val_sizes: tuple[SplitDataset, list[tuple[int, int]]] | None = None

    def prepare_data(self) -> None:
        """The reader's ``prepare`` (the synthetic set is generated here, explicitly and logged);
        real data is never fetched."""
        reader_prepare(self.entry, self.data_root, self.options)

    def setup(self, stage: str | None = None) -> None:
        """Build the train and val datasets: every sample checked first (``check``), else every
        listed file stat-ed. Repeated ids are dropped with a warning in the training list and an
        error in val (a repeat would be scored twice)."""
        self.prepare_data()  # cheap when done (the synthetic folder exists); setup() works alone
        if self.train_set is not None and self.val_set is not None:
            return
        checking = self.check != "off" and not self.checked and rank_zero_only.rank == 0
        datasets = self.split_datasets(lenient=checking)
        if checking:
            self._check(datasets)
        if self.train_set is None:
            self.train_set = datasets["train"]
        if self.val_set is None:
            self.val_set = datasets["val"]

    def split_dataset(
        self,
        split: str,
        *,
        transform: Any = None,
        on_repeat: OnRepeat = "error",
        check_files: bool = True,
    ) -> SplitDataset:
        """Split ``split`` of the dataset (no augmentation unless ``transform``), built by its
        reader; evaluate scores any split this way."""
        return self.reader.build(
            self.root,
            split,
            options=self.options,
            classes=self.classes,
            transform=transform,
            on_repeat=on_repeat,
            check_files=check_files,
        )

    def split_datasets(self, *, lenient: bool = False) -> dict[str, SplitDataset]:
        """``{"train": train split (training transform), "val": val split}``.

        ``lenient=True`` leaves missing files and repeated val ids to ``segkit.data.check``, which
        lists them with every other defect; otherwise the first one raises here.
        """
        transform = build_train_transform(
            crop_size=self.crop_size,
            scale_range=self.scale_range,
            hflip=self.hflip,
            color_jitter=self.color_jitter,
            seed=self.seed,
        )
        train = self.split_dataset(
            self.entry.train_split,
            transform=transform,
            on_repeat="warn",
            check_files=not lenient,
        )
        val = self.split_dataset(
            self.entry.val_split,
            on_repeat="keep_first" if lenient else "error",
            check_files=not lenient,
        )
        return {"train": train, "val": val}

    def _check(self, datasets: dict[str, SplitDataset]) -> None:
        log.info(
            "checking every sample of %s before training (data.check=%s; off skips it)",
            ", ".join(ds.split for ds in datasets.values()),
            self.check,
        )
        total = sum(len(ds) for ds in datasets.values())
        with progress(f"checking samples ({self.check})", total) as advance:
            report = check_datasets(
                list(datasets.values()),
                level=self.check,  # type: ignore[arg-type]
                workers=max(1, self.num_workers),
                progress=advance,
            )
        if report.defects:
            raise report.error(
                "fix or remove those samples (scripts/inspect_data.py with the same data=... "
                "overrides lists them all), or skip this check with data.check=off"
            )
        self.checked = True
        log.info("data check: %s", report.summary())

    def _train_loader(self, dataset: SplitDataset) -> DataLoader:
        # Resumable at any step (ResumableDataLoader); the shuffle has its own generator.
        shuffle = torch.Generator().manual_seed(self.seed)
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochRandomSampler(dataset, generator=shuffle),  # type: ignore[arg-type]
            drop_last=True,
            collate_fn=pad_collate,
            **self._loader_kwargs(),
        )

    def _loader_kwargs(self) -> dict[str, Any]:
        return {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory and torch.cuda.is_available(),
            "persistent_workers": self.num_workers > 0,
            "worker_init_fn": seed_worker,
            "generator": torch.Generator().manual_seed(self.seed),
        }

    def _val_loader(self, dataset: SplitDataset) -> DataLoader:
        """Whole val images in batches of one size (``segkit.data.batching``, evaluate's rule):
        each image scored as if alone, so ``val/mIoU`` is the number ``evaluate`` gives for the
        checkpoint on this split. Under DDP whole batches are dealt out in turn (each image on one
        rank; ranks may run one batch fewer); every rank gets at least one batch (a rank without
        would never log the epoch's metrics), smaller batches if needed, which changes no score."""
        trainer = self.trainer
        world, rank = (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)
        if len(dataset) < world:
            raise ValueError(
                f"the val split has {len(dataset)} images for {world} DDP processes: "
                "each needs one (use fewer trainer.devices or a larger val split)"
            )
        indices = list(range(len(dataset)))
        if self._val_sizes is None or self._val_sizes[0] is not dataset:
            self._val_sizes = (dataset, image_sizes(dataset, indices))
        sizes, size = self._val_sizes[1], self.val_batch_size
        batches = same_size_batches(indices, sizes, size, key="data.val_batch_size")
        while len(batches) < world:
            size = max(1, size // 2)
            batches = same_size_batches(indices, sizes, size)
        return same_size_loader(
            dataset, batches, rank=rank, world_size=world, **self._loader_kwargs()
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        return self._train_loader(self.train_set)  # type: ignore[arg-type]

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            self.setup("validate")
        return self._val_loader(self.val_set)  # type: ignore[arg-type]

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """On the device: ``mask`` uint8 (B, H, W) -> int64. ``image`` stays uint8 (B, 3, H, W):
        the model normalises it (``Segmentor.normalize``)."""
        if not isinstance(batch, dict):
            return batch
        mask = batch.get("mask")
        if mask is not None and mask.dtype == torch.uint8:
            batch["mask"] = mask.long()
        return batch
