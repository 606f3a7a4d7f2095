"""``SegDataModule``: VOC, VOC + SBD (trainaug) or synthetic data behind one LightningDataModule."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.data import DataLoader

from segkit.checks import check_batch_size, check_dataset
from segkit.constants import NUM_VOC_CLASSES, VOC_CLASSES
from segkit.data.check import LEVELS, check_datasets
from segkit.data.collate import pad_collate
from segkit.data.sbd import AUG_MASK_DIR
from segkit.data.synthetic import (
    SyntheticSpec,
    ensure_synthetic,
    synthetic_class_names,
    synthetic_folder_name,
)
from segkit.data.transforms import build_train_transform, normalize
from segkit.data.voc import VOCSegmentation

log = logging.getLogger(__name__)

DatasetName = Literal["voc", "voc_aug", "synthetic"]
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


class SegDataModule(pl.LightningDataModule):
    """Training / validation data for segkit; batches follow the data contract.

    Batches: ``{"image": uint8 (B, 3, H, W), "mask": uint8 (B, H, W) with 255 = void/pad,
    "id": list[str]}``; ``on_after_batch_transfer`` turns ``image`` into float32 normalised on the
    device and ``mask`` into int64 there (what the loss and the metrics index with).

    Args:
        dataset: ``"voc"`` (VOC train / val), ``"voc_aug"`` (trainaug / VOC val, needs SBD) or
            ``"synthetic"`` (generated on first use, one folder per generator spec).
        root: folder holding ``VOCdevkit/VOC2012`` (and ``benchmark_RELEASE`` for SBD); for
            synthetic data the parent of the per-spec folders (``self.root`` is then
            ``root/<synthetic_folder_name(spec)>``, the folder holding that spec's ``VOCdevkit``).
        num_classes: 21 for VOC; for synthetic, background + shape x colour family classes.
        crop_size: square training crop; val uses whole images, padded per batch.
        scale_range: (min, max) random rescale factor for training.
        batch_size, val_batch_size: per-step batch sizes (train drops the last incomplete batch).
        num_workers: DataLoader workers (persistent when > 0).
        pin_memory: pin host memory for faster device copies.
        hflip, color_jitter: augmentation switches (see ``build_train_transform``).
        seed: seeds the train shuffling, the workers' augmentation streams and (for num_workers=0)
            the transform itself.
        synthetic: generator parameters, required when ``dataset="synthetic"``.
        check: before the datasets are first used, check every sample of the train and val splits
            (``segkit.data.check``) and fail with the list of defects, so a corrupt val image stops
            the run before training rather than at the first validation. ``"full"`` decodes every
            image and mask (VOC-sized train + val: 3.8 CPU-s, docs/benchmarks.md); ``"headers"``
            reads image headers only (2.7x less CPU; a truncated image body then fails when it is
            loaded); ``"off"`` skips it. Runs once, on global rank 0, with ``max(1, num_workers)``
            threads.
    """

    def __init__(
        self,
        *,
        dataset: DatasetName = "voc",
        root: str | Path = "data",
        num_classes: int = NUM_VOC_CLASSES,
        crop_size: int = 513,
        scale_range: Sequence[float] = (0.5, 2.0),
        batch_size: int = 16,
        val_batch_size: int = 4,
        num_workers: int = 4,
        pin_memory: bool = True,
        hflip: bool = True,
        color_jitter: float = 0.0,
        seed: int = 0,
        synthetic: SyntheticSpec | None = None,
        check: CheckLevel = "full",
    ) -> None:
        super().__init__()
        check_dataset(dataset)
        check_batch_size(batch_size, "data.batch_size")
        check_batch_size(val_batch_size, "data.val_batch_size")
        if check not in (*LEVELS, "off"):
            raise ValueError(f"data.check must be full, headers or off, got {check!r}")
        if dataset == "synthetic":
            if synthetic is None:
                raise ValueError("data.dataset=synthetic needs data.synthetic (a SyntheticSpec)")
            if synthetic.num_classes != num_classes:
                raise ValueError(
                    f"data.synthetic.num_classes={synthetic.num_classes} differs from "
                    f"data.num_classes={num_classes}: make them equal"
                )
            self.class_names: tuple[str, ...] = synthetic_class_names(num_classes)
        else:
            if num_classes != NUM_VOC_CLASSES:
                raise ValueError(
                    f"data.num_classes must be {NUM_VOC_CLASSES} for Pascal VOC, got {num_classes}"
                )
            self.class_names = VOC_CLASSES
        self.dataset, self.num_classes = dataset, num_classes
        self.root = Path(root)
        if synthetic is not None and dataset == "synthetic":
            self.synthetic_root = self.root
            self.root = self.root / synthetic_folder_name(synthetic)
        self.crop_size, self.scale_range = int(crop_size), tuple(float(s) for s in scale_range)
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.hflip, self.color_jitter, self.seed = hflip, color_jitter, seed
        self.synthetic = synthetic
        self.check = check
        self.checked = False
        self.train_set: VOCSegmentation | None = None
        self.val_set: VOCSegmentation | None = None

    def prepare_data(self) -> None:
        """Generate the synthetic set if needed (explicit and logged); real data is never fetched."""
        if self.dataset == "synthetic":
            ensure_synthetic(self.synthetic_root, self.synthetic)  # type: ignore[arg-type]

    def setup(self, stage: str | None = None) -> None:
        """Build the train and val datasets: every sample checked first (``check``), else every
        listed file stat-ed. Repeated ids are dropped with a warning in the training list and an
        error in val (a repeat would be scored twice)."""
        if self.dataset == "synthetic":
            self.prepare_data()  # cheap when the folder exists; makes setup() usable alone
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

    def split_datasets(self, *, lenient: bool = False) -> dict[str, VOCSegmentation]:
        """``{"train": train split (training transform), "val": val split}``.

        ``lenient=True`` leaves missing files and repeated val ids to ``segkit.data.check``, which
        lists them with every other defect; otherwise the first one raises here.
        """
        train_split, train_masks = (
            ("trainaug", AUG_MASK_DIR)
            if self.dataset == "voc_aug"
            else ("train", "SegmentationClass")
        )
        transform = build_train_transform(
            crop_size=self.crop_size,
            scale_range=self.scale_range,
            hflip=self.hflip,
            color_jitter=self.color_jitter,
            seed=self.seed,
        )
        train = VOCSegmentation(
            self.root,
            train_split,
            num_classes=self.num_classes,
            mask_dir=train_masks,
            transform=transform,
            on_repeat="warn",
            check_files=not lenient,
        )
        val = VOCSegmentation(
            self.root,
            "val",
            num_classes=self.num_classes,
            on_repeat="keep_first" if lenient else "error",
            check_files=not lenient,
        )
        return {"train": train, "val": val}

    def _check(self, datasets: dict[str, VOCSegmentation]) -> None:
        log.info(
            "checking every sample of %s before training (data.check=%s; off skips it)",
            ", ".join(ds.split for ds in datasets.values()),
            self.check,
        )
        report = check_datasets(
            list(datasets.values()),
            level=self.check,  # type: ignore[arg-type]
            workers=max(1, self.num_workers),
        )
        if report.defects:
            raise report.error(
                "fix or remove those samples (scripts/inspect_data.py with the same data=... "
                "overrides lists them all), or skip this check with data.check=off"
            )
        self.checked = True
        log.info("data check: %s", report.summary())

    def _loader(self, dataset: VOCSegmentation, *, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.val_batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            collate_fn=pad_collate,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        return self._loader(self.train_set, train=True)  # type: ignore[arg-type]

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            self.setup("validate")
        return self._loader(self.val_set, train=False)  # type: ignore[arg-type]

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """On the device: ``image`` uint8 (B, 3, H, W) -> normalised float32; ``mask`` uint8
        (B, H, W) -> int64."""
        if not isinstance(batch, dict):
            return batch
        image, mask = batch.get("image"), batch.get("mask")
        if image is not None and image.dtype == torch.uint8:
            batch["image"] = normalize(image)
        if mask is not None and mask.dtype == torch.uint8:
            batch["mask"] = mask.long()
        return batch
