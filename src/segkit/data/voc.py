"""Pascal VOC 2012 in its real ``VOCdevkit/VOC2012`` layout.

Expected tree (``root`` may be the folder holding ``VOCdevkit`` or the ``VOC2012`` folder itself)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png      palette PNG, index = label, 255 = void
    VOCdevkit/VOC2012/SegmentationClassAug/<id>.png   (trainaug masks, built by scripts/download_voc.py)
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval,trainaug}.txt
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The data-root rule lives in segkit.checks (shared with the command line's pre-flight check).
from segkit.checks import resolve_voc_dir
from segkit.data.classes import ClassInfo, label_colormap
from segkit.data.split import Files, Layout, SegDataset, SegSplit, read_id_list

#: The trainaug masks (VOC's where VOC has one, SBD's converted otherwise; ``segkit.data.sbd``).
AUG_MASK_DIR = "SegmentationClassAug"

#: The 21 Pascal VOC 2012 segmentation classes, index = label value.
VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

#: VOC's classes, its palette (the DeepLab label colormap) and 255 void; background uncoloured.
VOC_INFO = ClassInfo(
    names=VOC_CLASSES,
    palette=label_colormap(len(VOC_CLASSES)),
    void=255,
    background=0,
    source="Pascal VOC 2012",
)


def split_path(voc_dir: Path, split: str) -> Path:
    """``<voc_dir>/ImageSets/Segmentation/<split>.txt``."""
    return voc_dir / "ImageSets" / "Segmentation" / f"{split}.txt"


def read_split(voc_dir: Path, split: str) -> list[str]:
    """Image ids listed in ``ImageSets/Segmentation/<split>.txt`` (repeats kept)."""
    fix = (
        "build it with `python scripts/download_voc.py --root <data root>` (needs SBD)"
        if split == "trainaug"
        else "re-extract the VOC archive or pick a split that exists"
    )
    return read_id_list(split_path(voc_dir, split), fix=fix)


def voc_layout(voc_dir: Path, split: str) -> Layout:
    """Split ``split`` of the ``VOC2012`` folder ``voc_dir`` (also the synthetic set's layout);
    the trainaug split reads the SBD-augmented masks."""
    masks = AUG_MASK_DIR if split == "trainaug" else "SegmentationClass"
    return Layout(
        read_split(voc_dir, split),
        images=Files(voc_dir / "JPEGImages", ".jpg"),
        masks=Files(voc_dir / masks, ".png"),
        split_path=split_path(voc_dir, split),
        empty="regenerate the split list or pick another split",
    )


def voc_split(
    root: str | Path,
    split: str,
    num_classes: int = 21,
    *,
    classes: ClassInfo | None = None,
    **kwargs: Any,
) -> SegSplit:
    """Split ``split`` of any tree in VOC's layout (``root`` as :class:`VOC`'s) with ``classes``
    (None: VOC's for 21 classes, numbered names otherwise), e.g. a generated synthetic tree;
    ``kwargs``: :class:`~segkit.data.split.SegSplit`'s ``transform``, ``on_repeat``,
    ``check_files``."""
    if classes is None:
        classes = (
            VOC_INFO if num_classes == VOC_INFO.num_classes else ClassInfo.numbered(num_classes)
        )
    return SegSplit(split, voc_layout(resolve_voc_dir(root), split), classes=classes, **kwargs)


@dataclass(frozen=True)
class VOC(SegDataset):
    """Pascal VOC 2012 (``data=voc``); ``train_split="trainaug"`` trains on VOC + SBD
    (``data=voc_aug``, built by ``scripts/download_voc.py``).

    Args:
        root: the folder holding ``VOCdevkit/VOC2012`` (or the ``VOC2012`` folder itself).
        train_split: the list SegDataModule trains on (``train`` or ``trainaug``).
    """

    root: str | Path
    train_split: str = "train"

    @property
    def classes(self) -> ClassInfo:
        return VOC_INFO

    @property
    def name(self) -> str:
        return "voc_aug" if self.train_split == "trainaug" else "voc"

    def layout(self, name: str) -> Layout:
        return voc_layout(resolve_voc_dir(self.root), name)


__all__ = [
    "AUG_MASK_DIR",
    "VOC",
    "VOC_CLASSES",
    "VOC_INFO",
    "read_split",
    "voc_layout",
    "voc_split",
]
