"""segkit.data: VOC / SBD / synthetic readers, the data check, transforms, collate, DataModule and
downloads."""

from segkit.data.check import CheckReport, Defect, check_datasets
from segkit.data.collate import pad_collate
from segkit.data.datamodule import SegDataModule, seed_worker
from segkit.data.io import check_sample, read_image, read_mask, save_mask
from segkit.data.sbd import build_trainaug, read_sbd_mask, trainaug_ids
from segkit.data.synthetic import (
    SyntheticSpec,
    ensure_synthetic,
    generate_synthetic,
    render_sample,
    synthetic_class_names,
    synthetic_folder_name,
)
from segkit.data.transforms import MEAN_UINT8, build_train_transform, normalize
from segkit.data.voc import VOCSegmentation, resolve_voc_dir

__all__ = [
    "MEAN_UINT8",
    "CheckReport",
    "Defect",
    "SegDataModule",
    "SyntheticSpec",
    "VOCSegmentation",
    "build_train_transform",
    "build_trainaug",
    "check_datasets",
    "check_sample",
    "ensure_synthetic",
    "generate_synthetic",
    "normalize",
    "pad_collate",
    "read_image",
    "read_mask",
    "read_sbd_mask",
    "render_sample",
    "resolve_voc_dir",
    "save_mask",
    "seed_worker",
    "synthetic_class_names",
    "synthetic_folder_name",
    "trainaug_ids",
]
