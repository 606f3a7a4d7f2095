"""Cityscapes (fine annotations) in its release layout, trained on the 19 standard classes.

Expected tree under ``root`` (what unzipping the two archives into ``root`` gives)::

    leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png    1024x2048 RGB
    gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png     labelIds 0..33

Splits: train 2,975 images (18 cities), val 500 (frankfurt, lindau, munster), test 1,525 (its
labels are withheld: every pixel is void). Masks store *labelIds*; the 19 evaluated classes
("trainIds" 0..18 of cityscapesScripts' ``helpers/labels.py``) are kept and every other id
(unlabeled, ego vehicle, parking, guard rail, caravan...) becomes void. With
``masks=labelTrainIds`` the reader takes the ``*_gtFine_labelTrainIds.png`` files that
cityscapesScripts' ``createTrainIdLabelImgs`` writes (values 0..18 and 255) instead.

Getting the data needs an account, so nothing here downloads it: see :data:`DOWNLOAD_HELP`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from segkit.data.classes import ClassInfo
from segkit.data.split import Files, LabelLookup, Layout, SegDataset

#: The 19 evaluated classes: (name, labelId, colour); the trainId is the position.
TRAIN_CLASSES: tuple[tuple[str, int, tuple[int, int, int]], ...] = (
    ("road", 7, (128, 64, 128)),
    ("sidewalk", 8, (244, 35, 232)),
    ("building", 11, (70, 70, 70)),
    ("wall", 12, (102, 102, 156)),
    ("fence", 13, (190, 153, 153)),
    ("pole", 17, (153, 153, 153)),
    ("traffic light", 19, (250, 170, 30)),
    ("traffic sign", 20, (220, 220, 0)),
    ("vegetation", 21, (107, 142, 35)),
    ("terrain", 22, (152, 251, 152)),
    ("sky", 23, (70, 130, 180)),
    ("person", 24, (220, 20, 60)),
    ("rider", 25, (255, 0, 0)),
    ("car", 26, (0, 0, 142)),
    ("truck", 27, (0, 0, 70)),
    ("bus", 28, (0, 60, 100)),
    ("train", 31, (0, 80, 100)),
    ("motorcycle", 32, (0, 0, 230)),
    ("bicycle", 33, (119, 11, 32)),
)

#: labelIds the annotation PNGs use: 0..33 (license plate, id -1, is never written).
LABEL_IDS = range(34)

#: labelId -> trainId of the 19 classes (the other labelIds are void).
LABEL_TO_TRAIN: dict[int, int] = {label_id: k for k, (_, label_id, _) in enumerate(TRAIN_CLASSES)}

CITYSCAPES_INFO = ClassInfo(
    names=tuple(name for name, _, _ in TRAIN_CLASSES),
    palette=tuple(colour for _, _, colour in TRAIN_CLASSES),
    void=255,
    background=None,
    source="Cityscapes",
)

SPLITS = ("train", "val", "test")
IMAGE_SUFFIX = "_leftImg8bit.png"

DOWNLOAD_HELP = (
    "log in at https://www.cityscapes-dataset.com/downloads/ (a free account is needed), "
    "download gtFine_trainvaltest.zip (241 MB) and leftImg8bit_trainvaltest.zip (11 GB) and "
    "unzip both into {root} (it then holds gtFine/ and leftImg8bit/); see docs/datasets.md"
)

MaskKind = Literal["labelIds", "labelTrainIds"]


def lookup(masks: MaskKind = "labelIds") -> LabelLookup:
    """The file value -> label table of ``masks`` files."""
    k = len(TRAIN_CLASSES)
    if masks == "labelTrainIds":
        return LabelLookup.build(
            {v: v for v in range(k)},
            defined=range(k),
            num_classes=k,
            what=f"Cityscapes trainIds (0..{k - 1}, 255)",
            fix="use the *_gtFine_labelTrainIds.png files cityscapesScripts writes, or set "
            "the dataset's masks='labelIds'",
        )
    return LabelLookup.build(
        LABEL_TO_TRAIN,
        defined=LABEL_IDS,
        num_classes=k,
        what="Cityscapes labelIds (0..33)",
        fix="point the dataset's root at the unzipped gtFine_trainvaltest.zip (the "
        "*_gtFine_labelIds.png files, not _color / _instanceIds), or set its "
        "masks='labelTrainIds' for trainId PNGs",
    )


def check_root(root: str | Path, split: str = "train") -> None:
    """FileNotFoundError (one line: what is missing, what to download, where) unless ``root``
    holds ``leftImg8bit/<split>`` and ``gtFine/<split>``."""
    root = Path(root)
    help_text = DOWNLOAD_HELP.format(root=root)
    if not root.is_dir():
        raise FileNotFoundError(f"Cityscapes not found: {root} does not exist; {help_text}")
    for folder, archive in (
        ("leftImg8bit", "leftImg8bit_trainvaltest.zip"),
        ("gtFine", "gtFine_trainvaltest.zip"),
    ):
        if not (root / folder / split).is_dir():
            raise FileNotFoundError(
                f"Cityscapes {split} split not found: {root / folder / split} is missing (from "
                f"{archive}); {help_text}"
            )


def _list_ids(image_dir: Path) -> list[str]:
    """``<city>/<stem>`` of every ``<city>/*_leftImg8bit.png``, sorted (cities, then frames)."""
    ids = []
    for city in sorted(p for p in image_dir.iterdir() if p.is_dir()):
        for path in sorted(city.glob(f"*{IMAGE_SUFFIX}")):
            ids.append(f"{city.name}/{path.name[: -len(IMAGE_SUFFIX)]}")
    return ids


@dataclass(frozen=True)
class Cityscapes(SegDataset):
    """Cityscapes, fine annotations (``data=cityscapes``); ids are ``<city>/<city>_<seq>_<frame>``,
    sorted.

    Args:
        root: the folder holding ``leftImg8bit/`` and ``gtFine/``.
        masks: which gtFine PNGs to read: ``labelIds`` (the release's, mapped to the 19 classes
            here) or ``labelTrainIds`` (already mapped by cityscapesScripts).
    """

    root: str | Path
    masks: MaskKind = "labelIds"

    def __post_init__(self) -> None:
        if self.masks not in ("labelIds", "labelTrainIds"):
            raise ValueError(f"masks must be 'labelIds' or 'labelTrainIds', got {self.masks!r}")

    @property
    def classes(self) -> ClassInfo:
        """The 19 train classes and their official colours (nothing under ``root`` is read)."""
        return CITYSCAPES_INFO

    def layout(self, name: str) -> Layout:
        if name not in SPLITS:
            raise ValueError(f"Cityscapes has splits {', '.join(SPLITS)}, got {name!r}")
        check_root(self.root, name)
        image_dir = Path(self.root) / "leftImg8bit" / name
        return Layout(
            _list_ids(image_dir),
            images=Files(image_dir, IMAGE_SUFFIX),
            masks=Files(Path(self.root) / "gtFine" / name, f"_gtFine_{self.masks}.png"),
            split_path=image_dir,
            lookup=lookup(self.masks),
            empty=f"expected <city>/<city>_<seq>_<frame>{IMAGE_SUFFIX} files; re-extract "
            "leftImg8bit_trainvaltest.zip into the dataset's root",
            missing="re-extract gtFine_trainvaltest.zip into the dataset's root",
        )


__all__ = [
    "CITYSCAPES_INFO",
    "LABEL_TO_TRAIN",
    "TRAIN_CLASSES",
    "Cityscapes",
    "check_root",
    "lookup",
]
