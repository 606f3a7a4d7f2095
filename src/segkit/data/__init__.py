"""segkit.data: the dataset contract (class metadata, registry), the VOC / SBD / synthetic / folder
readers, the data check, transforms, collate, DataModule and downloads.

Names are imported on first use (PEP 562), so ``segkit.data.download`` (``scripts/download_voc.py``)
does not import torch, Lightning or albumentations.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "check": ("CheckReport", "Defect", "check_datasets"),
        "classes": ("ClassInfo", "VOID_COLOUR", "label_colormap"),
        "collate": ("pad_collate",),
        "folder": ("FolderSegmentation", "read_classes_file"),
        "datamodule": ("SegDataModule", "seed_worker"),
        "io": ("check_sample", "read_image", "read_mask", "save_mask"),
        "registry": (
            "DatasetEntry",
            "SplitDataset",
            "dataset_entry",
            "dataset_names",
            "register_dataset",
        ),
        "sbd": ("build_trainaug", "read_sbd_mask", "trainaug_ids"),
        "synthetic": (
            "SyntheticSpec",
            "ensure_synthetic",
            "generate_synthetic",
            "render_sample",
            "synthetic_class_names",
            "synthetic_folder_name",
        ),
        "transforms": ("MEAN_UINT8", "build_train_transform"),
        "voc": ("VOC_CLASSES", "VOC_INFO", "VOCSegmentation", "resolve_voc_dir"),
    },
)
