"""segkit.data: VOC / SBD / synthetic readers, the data check, transforms, collate, DataModule and
downloads.

Names are imported on first use (PEP 562), so ``segkit.data.download`` (``scripts/download_voc.py``)
does not import torch, Lightning or albumentations.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CheckReport": "check",
    "Defect": "check",
    "check_datasets": "check",
    "pad_collate": "collate",
    "SegDataModule": "datamodule",
    "seed_worker": "datamodule",
    "check_sample": "io",
    "read_image": "io",
    "read_mask": "io",
    "save_mask": "io",
    "build_trainaug": "sbd",
    "read_sbd_mask": "sbd",
    "trainaug_ids": "sbd",
    "SyntheticSpec": "synthetic",
    "ensure_synthetic": "synthetic",
    "generate_synthetic": "synthetic",
    "render_sample": "synthetic",
    "synthetic_class_names": "synthetic",
    "synthetic_folder_name": "synthetic",
    "MEAN_UINT8": "transforms",
    "build_train_transform": "transforms",
    "normalize": "transforms",
    "VOCSegmentation": "voc",
    "resolve_voc_dir": "voc",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
