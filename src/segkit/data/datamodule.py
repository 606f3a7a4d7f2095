"""``SegDataModule``: any dataset object (``segkit.data.split.SegDataset``) behind one
LightningDataModule."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import DataLoader

from segkit.checks import check_batch_size, check_dataset_node, check_num_workers
from segkit.data.batching import image_sizes, same_size_batches, same_size_loader
from segkit.data.check import LEVELS, check_datasets
from segkit.data.classes import ClassInfo
from segkit.data.collate import pad_collate
from segkit.data.loader import EpochRandomSampler, ResumableDataLoader, seed_worker
from segkit.data.split import SegDataset, SegSplit
from segkit.data.transforms import build_train_transform
from segkit.progress import progress

log = logging.getLogger(__name__)

CheckLevel = Literal["full", "headers", "off"]


class SegDataModule(pl.LightningDataModule):
    """Training / validation data for segkit; batches follow the data contract.

    Batches: ``{"image": uint8 (B, 3, H, W), "mask": uint8 (B, H, W) with 255 = void/pad,
    "id": list[str]}``; ``on_after_batch_transfer`` turns ``image`` into float32 normalised on the
    device and ``mask`` into int64 there (what the loss and the metrics index with).

    The dataset object gives the class metadata (``classes``: names, palette, void) and the
    splits (``dataset.train_split`` / ``val_split``); nothing here depends on which it is.

    Args:
        dataset: the dataset (``segkit.data.VOC``, ``Synthetic``, ``Folder``, ``Cityscapes``,
            ``ADE20K``, ``CamVid``: the data config's ``dataset`` node, ``_target_`` + its root
            and options).
        root: the data root; when given it replaces ``dataset.root`` (the data configs set
            ``data.root``, which their dataset node also reads, so one key moves both).
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
        inference: the dataset's default inference for evaluate and predict, as ``eval.*`` keys
            (``mode``, ``window``, ``stride``, ``scales``, ``flip``), e.g. Cityscapes' sliding
            window over its 1024x2048 images; an ``eval.*`` / ``predict.*`` key set to a value
            wins (``segkit.tasks.checkpoints``). Not used by training-time validation.
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
        dataset: SegDataset,
        root: str | Path | None = None,
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
        check: CheckLevel = "full",
        inference: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_batch_size(batch_size, "batch_size")
        check_batch_size(val_batch_size, "val_batch_size")
        check_num_workers(num_workers, "num_workers")
        check_dataset_node(dataset)
        if check not in (*LEVELS, "off"):
            raise ValueError(f"check must be 'full', 'headers' or 'off', got {check!r}")
        if root is not None and Path(root) != Path(dataset.root):
            dataset = dataclasses.replace(dataset, root=root)  # type: ignore[type-var]
        self.dataset = dataset
        self.classes: ClassInfo = dataset.classes
        if num_classes is not None and num_classes != self.classes.num_classes:
            raise ValueError(
                f"num_classes={num_classes} but {self.classes.source} has "
                f"{self.classes.num_classes} classes: set num_classes="
                f"{self.classes.num_classes} (or None, to take the dataset's)"
            )
        self.num_classes = self.classes.num_classes
        self.class_names: tuple[str, ...] = self.classes.names
        self.crop_size, self.scale_range = int(crop_size), tuple(float(s) for s in scale_range)
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.hflip, self.color_jitter, self.seed = hflip, color_jitter, seed
        self.check = check
        self.inference = dict(inference or {})
        self.checked = False
        self.train_set: SegSplit | None = None
        self.val_set: SegSplit | None = None
        # (dataset, (H, W) of each of its images from the file headers): read once per val set
        self._val_sizes: tuple[SegSplit, list[tuple[int, int]]] | None = None

    def prepare_data(self) -> None:
        """The dataset's ``prepare`` (the synthetic set is generated here, explicitly and
        logged); real data is never fetched."""
        self.dataset.prepare()

    def setup(self, stage: str | None = None) -> None:
        """Build the train and val datasets: every sample checked first (``check``), else every
        listed file stat-ed. Repeated ids are dropped with a warning in the training list and an
        error in val (a repeat would be scored twice)."""
        self.prepare_data()  # cheap when done (the synthetic folder exists); setup() works alone
        if self.train_set is not None and self.val_set is not None:
            return
        checking = self.check != "off" and not self.checked and rank_zero_only.rank == 0
        transform = build_train_transform(
            crop_size=self.crop_size,
            scale_range=self.scale_range,
            hflip=self.hflip,
            color_jitter=self.color_jitter,
            seed=self.seed,
        )
        datasets = self.dataset.train_val(transform=transform, lenient=checking)
        if checking:
            self._check(datasets)
        if self.train_set is None:
            self.train_set = datasets["train"]
        if self.val_set is None:
            self.val_set = datasets["val"]

    def _check(self, datasets: dict[str, SegSplit]) -> None:
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
                "fix or remove those samples (scripts/inspect_data.py with the same data "
                "settings lists them all), or skip this check (SegDataModule's check='off')"
            )
        self.checked = True
        log.info("data check: %s", report.summary())

    def _train_loader(self, dataset: SegSplit) -> DataLoader:
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

    def _val_loader(self, dataset: SegSplit) -> DataLoader:
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
                "each needs one (use fewer devices in the Trainer, or a larger val split)"
            )
        indices = list(range(len(dataset)))
        if self._val_sizes is None or self._val_sizes[0] is not dataset:
            self._val_sizes = (dataset, image_sizes(dataset, indices))
        sizes, size = self._val_sizes[1], self.val_batch_size
        batches = same_size_batches(indices, sizes, size, key="val_batch_size")
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
