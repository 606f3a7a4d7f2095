"""Pascal VOC 2012 segmentation reader for the real ``VOCdevkit/VOC2012`` layout.

Expected tree (``root`` may be the folder holding ``VOCdevkit`` or the ``VOC2012`` folder itself)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png      palette PNG, index = label, 255 = void
    VOCdevkit/VOC2012/SegmentationClassAug/<id>.png   (trainaug masks, built by scripts/download_voc.py)
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval,trainaug}.txt
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

# The data-root rule lives in segkit.checks (shared with the command line's pre-flight check).
from segkit.checks import resolve_voc_dir
from segkit.constants import IGNORE_INDEX
from segkit.data.classes import ClassInfo, label_colormap
from segkit.data.io import check_sample, read_image, read_mask
from segkit.data.registry import OnRepeat

log = logging.getLogger(__name__)

#: A transform in the albumentations calling convention: ``t(image=..., mask=...) -> dict``.
Transform = Callable[..., dict[str, Any]]

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


def read_id_list(path: Path, *, fix: str) -> list[str]:
    """Image ids of a split list (VOC ``ImageSets/Segmentation/*.txt``, SBD ``train.txt``): one per
    line, blanks skipped, as written (repeated ids are kept, see ``repeated_ids``). A missing file
    raises FileNotFoundError naming it and ``fix``."""
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} is missing: {fix}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_split(voc_dir: Path, split: str) -> list[str]:
    """Image ids listed in ``ImageSets/Segmentation/<split>.txt`` (:func:`read_id_list`)."""
    fix = (
        "build it with `python scripts/download_voc.py --root <data root>` (needs SBD)"
        if split == "trainaug"
        else "re-extract the VOC archive or pick a split that exists"
    )
    return read_id_list(split_path(voc_dir, split), fix=fix)


def repeated_ids(ids: list[str]) -> dict[str, int]:
    """``{id: times listed}`` for the ids listed more than once, in order of first appearance."""
    return {image_id: n for image_id, n in Counter(ids).items() if n > 1}


def repeated_ids_message(path: Path, repeated: dict[str, int], *, dropped: bool) -> str:
    """One line naming the split list and its repeated ids (the first 10, then a count)."""
    shown = ", ".join(f"{image_id!r} x{n}" for image_id, n in list(repeated.items())[:10])
    more = f" and {len(repeated) - 10} more" if len(repeated) > 10 else ""
    what = (
        "training uses each once (repeats dropped); remove the repeated lines to silence this"
        if dropped
        else "each id must be listed once (a repeat is scored several times and changes the "
        "metrics): remove the repeated lines"
    )
    return f"split list {path} lists {len(repeated)} ids more than once ({shown}{more}): {what}"


class VOCSegmentation(Dataset):
    """VOC-format segmentation samples of one split.

    Items are dicts ``{"image": uint8 (H, W, 3) RGB, "mask": uint8 (H, W), "id": str}`` after
    ``transform``; the collate turns them into tensors. Missing files are detected when the dataset is
    built (one stat per file); size and label-value checks run per sample on load
    (``segkit.data.check`` checks every sample up front).

    Args:
        root: folder holding ``VOCdevkit/VOC2012`` (or the ``VOC2012`` folder itself).
        split: name of a list in ``ImageSets/Segmentation`` (``train``, ``val``, ``trainaug``...).
        num_classes: valid labels are ``0..num_classes-1`` plus 255 (void); ignored when
            ``classes`` is given (its count is used).
        mask_dir: folder of label PNGs (``SegmentationClass``; ``SegmentationClassAug`` for trainaug).
        transform: albumentations-style callable applied to image and mask together.
        on_repeat: what to do with ids the split list names more than once: ``"error"`` (the
            default: a repeat would be scored twice), ``"warn"`` (log a warning and keep the first
            occurrence: the training split) or ``"keep_first"`` (keep the first occurrence
            silently, for a checker that reports ``repeated`` itself).
        check_files: stat every listed file now and raise on the first missing one; ``False``
            leaves that to a checker that lists every defect (``segkit.data.check``).
        classes: the class metadata (None: VOC's for 21 classes, numbered names otherwise).

    Attributes:
        repeated: ``{id: times listed}`` of the ids the split list repeats (empty when none).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        num_classes: int = 21,
        mask_dir: str = "SegmentationClass",
        transform: Transform | None = None,
        on_repeat: OnRepeat = "error",
        check_files: bool = True,
        classes: ClassInfo | None = None,
    ) -> None:
        if classes is None:
            classes = (
                VOC_INFO if num_classes == len(VOC_CLASSES) else ClassInfo.numbered(num_classes)
            )
        if on_repeat not in ("error", "warn", "keep_first"):
            raise ValueError(f"on_repeat must be error, warn or keep_first, got {on_repeat!r}")
        self.voc_dir = resolve_voc_dir(root)
        self.split = split
        self.classes = classes
        self.num_classes = classes.num_classes
        self.transform = transform
        self.on_repeat = on_repeat
        self.split_path = split_path(self.voc_dir, split)
        listed = read_split(self.voc_dir, split)
        if not listed:
            raise ValueError(
                f"split list {self.split_path} is empty: regenerate it or pick another split"
            )
        self.repeated = repeated_ids(listed)
        if self.repeated and on_repeat == "error":
            raise ValueError(repeated_ids_message(self.split_path, self.repeated, dropped=False))
        if self.repeated and on_repeat == "warn":
            log.warning(repeated_ids_message(self.split_path, self.repeated, dropped=True))
        self.ids = list(dict.fromkeys(listed))  # first occurrences, in list order
        self.image_dir = self.voc_dir / "JPEGImages"
        self.mask_dir = self.voc_dir / mask_dir
        if check_files:
            self._check_files_exist()

    def _check_files_exist(self) -> None:
        for image_id in self.ids:
            for path, kind in (
                (self.image_path(image_id), "image"),
                (self.mask_path(image_id), "mask"),
            ):
                if not path.is_file():
                    raise FileNotFoundError(
                        f"{kind} file {path} for id {image_id!r} in split '{self.split}' is missing: "
                        "restore the file or remove the id from the split list"
                    )

    def image_path(self, image_id: str) -> Path:
        return self.image_dir / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path:
        return self.mask_dir / f"{image_id}.png"

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw, validated ``(image uint8 (H, W, 3), mask uint8 (H, W))`` of sample ``index``."""
        image_id = self.ids[index]
        image = read_image(self.image_path(image_id))
        mask = self.load_mask(index)
        check_sample(
            image,
            mask,
            self.num_classes,
            mask_path=self.mask_path(image_id),
            image_path=self.image_path(image_id),
        )
        return image, mask

    def load_mask(self, index: int) -> np.ndarray:
        """Mask of sample ``index`` without decoding the image (for statistics); a void value
        other than 255 in the files (``classes.void``) becomes 255."""
        mask = read_mask(self.mask_path(self.ids[index]))
        if self.classes.void != IGNORE_INDEX:
            mask[mask == self.classes.void] = IGNORE_INDEX
        return mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.load(index)
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return {"image": image, "mask": mask, "id": self.ids[index]}


# The reader API of segkit.data.registry (datasets "voc" and "voc_aug").
Options = None


def classes(root: Path, options: None) -> ClassInfo:
    """VOC's 21 classes (the data root is not read)."""
    return VOC_INFO


def build(
    root: Path,
    split: str,
    *,
    options: None,
    classes: ClassInfo,
    transform: Transform | None,
    on_repeat: OnRepeat,
    check_files: bool,
) -> VOCSegmentation:
    """Split ``split`` of ``root``'s VOC tree; the trainaug split reads the SBD-augmented masks."""
    from segkit.data.sbd import AUG_MASK_DIR  # sbd imports this module

    return VOCSegmentation(
        root,
        split,
        classes=classes,
        mask_dir=AUG_MASK_DIR if split == "trainaug" else "SegmentationClass",
        transform=transform,
        on_repeat=on_repeat,
        check_files=check_files,
    )
