"""segkit.data: the datasets (one ``SegSplit`` base, a small dataset object each: VOC (+ SBD),
synthetic, folder, Cityscapes, ADE20K, CamVid), class metadata, the data check, transforms,
collate, the loaders, the DataModule and downloads.

Names are imported on first use (PEP 562), so ``segkit.data.download`` (``scripts/download_voc.py``)
does not import torch, Lightning or albumentations, and ``segkit.data.VOC`` does not import
Lightning.
"""

from __future__ import annotations

from segkit._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ade20k": ("ADE20K",),
        "camvid": ("CamVid", "CamVidSplit"),
        "check": ("CheckReport", "Defect", "check_datasets"),
        "cityscapes": ("Cityscapes",),
        "classes": ("ClassInfo", "VOID_COLOUR", "label_colormap"),
        "collate": ("pad_collate",),
        "datamodule": ("SegDataModule",),
        "folder": ("Folder", "read_classes_file"),
        "io": ("check_sample", "read_image", "read_mask", "save_mask"),
        "loader": ("ResumableDataLoader", "seed_worker"),
        "sbd": ("build_trainaug", "read_sbd_mask", "trainaug_ids"),
        "split": ("Files", "LabelLookup", "Layout", "SegDataset", "SegSplit"),
        "synthetic": (
            "Synthetic",
            "SyntheticSpec",
            "ensure_synthetic",
            "generate_synthetic",
            "render_sample",
            "synthetic_class_names",
            "synthetic_folder_name",
        ),
        "transforms": ("MEAN_UINT8", "build_train_transform"),
        "voc": ("VOC", "VOC_CLASSES", "VOC_INFO", "resolve_voc_dir", "voc_split"),
    },
)
