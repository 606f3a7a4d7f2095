"""Class metadata of checkpoints written before segkit stored it (``checkpoint["segkit"]["classes"]``).

Those runs could only train on Pascal VOC (``voc``, ``voc_aug``) or the synthetic set, so their
classes follow from the stored ``data.dataset`` and ``num_classes``. Used only for such old
checkpoints, and logged each time (the caller says which checkpoint).
"""

from __future__ import annotations

from segkit.data.classes import ClassInfo
from segkit.data.synthetic import Synthetic
from segkit.data.voc import VOC_INFO


def classes_before_metadata(dataset: str | None, num_classes: int) -> ClassInfo:
    """The synthetic set's classes for ``dataset="synthetic"``, VOC's for ``voc`` / ``voc_aug`` (or
    no dataset named; numbered names past VOC's 21, as segkit drew such checkpoints then).
    Another dataset is a ValueError: its checkpoints always carry their classes."""
    if dataset not in (None, "voc", "voc_aug", "synthetic"):
        raise ValueError(
            f"a checkpoint of data.dataset={dataset} without class metadata cannot be: segkit "
            "stores it in every checkpoint since that dataset exists (retrain, or use a checkpoint "
            "written by scripts/train.py)"
        )
    if dataset == "synthetic":
        return Synthetic(num_classes=num_classes).classes
    if num_classes == VOC_INFO.num_classes:
        return VOC_INFO
    names = tuple(
        VOC_INFO.names[k] if k < VOC_INFO.num_classes else f"class {k}" for k in range(num_classes)
    )
    return ClassInfo(names=names, background=0, source="Pascal VOC (numbered past 21)")
