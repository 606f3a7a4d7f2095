"""ADE20K in the SceneParsing (ADEChallengeData2016) release layout: 150 classes.

Expected tree (``root`` may be the folder holding ``ADEChallengeData2016`` or that folder)::

    ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_<8 digits>.jpg
    ADEChallengeData2016/annotations/{training,validation}/ADE_{train,val}_<8 digits>.png

Splits: ``train`` = training (20,210 images), ``val`` = validation (2,000). The annotation PNGs
store 0 for "other objects" (not scored) and the classes as 1..150; the reader maps them to
segkit's 0..149 with 0 -> void ("reduce zero label", as the benchmark scores them). Class names
(the first name of each ``objectInfo150`` entry) and colours are the ones the mmsegmentation
ADE20K dataset uses. ``scripts/download_ade20k.py`` downloads and unpacks the archive
(``segkit.data.download``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segkit.data.classes import ClassInfo
from segkit.data.split import Files, LabelLookup, Layout, SegDataset

#: The 150 SceneParsing classes; index = segkit label = annotation value - 1.
ADE20K_CLASSES: tuple[str, ...] = (
    "wall",
    "building",
    "sky",
    "floor",
    "tree",
    "ceiling",
    "road",
    "bed",
    "windowpane",
    "grass",
    "cabinet",
    "sidewalk",
    "person",
    "earth",
    "door",
    "table",
    "mountain",
    "plant",
    "curtain",
    "chair",
    "car",
    "water",
    "painting",
    "sofa",
    "shelf",
    "house",
    "sea",
    "mirror",
    "rug",
    "field",
    "armchair",
    "seat",
    "fence",
    "desk",
    "rock",
    "wardrobe",
    "lamp",
    "bathtub",
    "railing",
    "cushion",
    "base",
    "box",
    "column",
    "signboard",
    "chest of drawers",
    "counter",
    "sand",
    "sink",
    "skyscraper",
    "fireplace",
    "refrigerator",
    "grandstand",
    "path",
    "stairs",
    "runway",
    "case",
    "pool table",
    "pillow",
    "screen door",
    "stairway",
    "river",
    "bridge",
    "bookcase",
    "blind",
    "coffee table",
    "toilet",
    "flower",
    "book",
    "hill",
    "bench",
    "countertop",
    "stove",
    "palm",
    "kitchen island",
    "computer",
    "swivel chair",
    "boat",
    "bar",
    "arcade machine",
    "hovel",
    "bus",
    "towel",
    "light",
    "truck",
    "tower",
    "chandelier",
    "awning",
    "streetlight",
    "booth",
    "television receiver",
    "airplane",
    "dirt track",
    "apparel",
    "pole",
    "land",
    "bannister",
    "escalator",
    "ottoman",
    "bottle",
    "buffet",
    "poster",
    "stage",
    "van",
    "ship",
    "fountain",
    "conveyer belt",
    "canopy",
    "washer",
    "plaything",
    "swimming pool",
    "stool",
    "barrel",
    "basket",
    "waterfall",
    "tent",
    "bag",
    "minibike",
    "cradle",
    "oven",
    "ball",
    "food",
    "step",
    "tank",
    "trade name",
    "microwave",
    "pot",
    "animal",
    "bicycle",
    "lake",
    "dishwasher",
    "screen",
    "blanket",
    "sculpture",
    "hood",
    "sconce",
    "vase",
    "traffic light",
    "tray",
    "ashcan",
    "fan",
    "pier",
    "crt screen",
    "plate",
    "monitor",
    "bulletin board",
    "shower",
    "radiator",
    "glass",
    "clock",
    "flag",
)

# One colour per class as RRGGBB hex (12 per line), in class order.
_PALETTE_HEX = (
    "787878 b47878 06e6e6 503232 04c803 787850 8c8c8c cc05ff e6e6e6 04fa07 e005ff ebff07 "
    "96053d 787846 08ff33 ff0652 8fff8c ccff04 ff3307 cc4603 0066c8 3de6fa ff0633 0b66ff "
    "ff0747 ff09e0 0907e6 dcdcdc ff095c 7009ff 08ffd6 07ffe0 ffb806 0aff47 ff290a 07ffff "
    "e0ff08 6608ff ff3d06 ffc207 ff7a08 00ff14 ff0829 ff0599 0633ff eb0cff a09614 00a3ff "
    "8c8c8c fa0a0f 14ff00 1fff00 ff1f00 ffe000 99ff00 0000ff ff4700 00ebff 00adff 1f00ff "
    "0bc8c8 ff5200 00fff5 003dff 00ff70 00ff85 ff0000 ffa300 ff6600 c2ff00 008fff 33ff00 "
    "0052ff 00ff29 00ffad 0a00ff adff00 00ff99 ff5c00 ff00ff ff00f5 ff0066 ffad00 ff0014 "
    "ffb8b8 001fff 00ff3d 0047ff ff00cc 00ffc2 00ff52 000aff 0070ff 3300ff 00c2ff 007aff "
    "00ffa3 ff9900 00ff0a ff7000 8fff00 5200ff a3ff00 ffeb00 08b8aa 8500ff 00ff5c b800ff "
    "ff001f 00b8ff 00d6ff ff0070 5cff00 00e0ff 70e0ff 46b8a0 a300ff 9900ff 47ff00 ff00a3 "
    "ffcc00 ff008f 00ffeb 85ff00 ff00eb f500ff ff007a fff500 0abed4 d6ff00 00ccff 1400ff "
    "ffff00 0099ff 0029ff 00ffcc 2900ff 29ff00 ad00ff 00f5ff 4700ff 7a00ff 00ffb8 005cff "
    "b8ff00 0085ff ffd600 19c2c2 66ff00 5c00ff "
)
ADE20K_PALETTE: tuple[tuple[int, int, int], ...] = tuple(
    (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)) for h in _PALETTE_HEX.split()
)

ADE20K_INFO = ClassInfo(
    names=ADE20K_CLASSES,
    palette=ADE20K_PALETTE,
    void=255,
    background=None,
    source="ADE20K (SceneParsing)",
)

#: The folder the archive unpacks to, and the logical split -> its folder name.
FOLDER = "ADEChallengeData2016"
SPLIT_FOLDERS = {"train": "training", "val": "validation"}

#: Annotation value -> label: 0 ("other") -> void, v -> v - 1.
LOOKUP = LabelLookup.build(
    {v: v - 1 for v in range(1, len(ADE20K_CLASSES) + 1)},
    defined=range(len(ADE20K_CLASSES) + 1),
    num_classes=len(ADE20K_CLASSES),
    what=f"ADE20K annotation values (0 = other, 1..{len(ADE20K_CLASSES)} = classes)",
    fix="point the dataset's root at the unpacked ADEChallengeData2016.zip (annotations/, not a "
    "re-coloured or already reduced copy); scripts/download_ade20k.py fetches it",
)

DOWNLOAD_HELP = (
    "download it with `python scripts/download_ade20k.py --root {parent}` (ADEChallengeData2016.zip, "
    "923 MB, MD5-checked, resumable), or unzip ADEChallengeData2016.zip from "
    "http://sceneparsing.csail.mit.edu/ into {parent}; see docs/datasets.md"
)


def resolve_dir(root: str | Path) -> Path:
    """The ``ADEChallengeData2016`` folder: ``root`` itself or ``root/ADEChallengeData2016``;
    FileNotFoundError (one line: the path, how to download, where) when neither holds ``images/``."""
    root = Path(root)
    for candidate in (root, root / FOLDER):
        if (candidate / "images").is_dir() and (candidate / "annotations").is_dir():
            return candidate
    parent = root.parent if root.name == FOLDER else root
    raise FileNotFoundError(
        f"ADE20K not found: neither {root} nor {root / FOLDER} holds images/ and annotations/; "
        + DOWNLOAD_HELP.format(parent=parent)
    )


@dataclass(frozen=True)
class ADE20K(SegDataset):
    """ADE20K SceneParsing (``data=ade20k``); ids are the file stems (``ADE_val_00000001``), sorted.

    Args:
        root: the folder holding ``ADEChallengeData2016`` (or that folder).
    """

    root: str | Path

    @property
    def classes(self) -> ClassInfo:
        """The 150 classes and their colours (nothing under ``root`` is read)."""
        return ADE20K_INFO

    def layout(self, name: str) -> Layout:
        if name not in SPLIT_FOLDERS:
            raise ValueError(f"ADE20K has splits {', '.join(SPLIT_FOLDERS)}, got {name!r}")
        ade_dir = resolve_dir(self.root)
        image_dir = ade_dir / "images" / SPLIT_FOLDERS[name]
        mask_dir = ade_dir / "annotations" / SPLIT_FOLDERS[name]
        for path in (image_dir, mask_dir):
            if not path.is_dir():
                raise FileNotFoundError(
                    f"ADE20K {name} split not found: {path} is missing; re-extract the archive ("
                    + DOWNLOAD_HELP.format(parent=ade_dir.parent)
                    + ")"
                )
        return Layout(
            sorted(p.stem for p in image_dir.glob("*.jpg")),
            images=Files(image_dir, ".jpg"),
            masks=Files(mask_dir, ".png"),
            split_path=image_dir,
            lookup=LOOKUP,
            empty="expected ADE_*.jpg files; re-extract ADEChallengeData2016.zip",
            missing="re-extract ADEChallengeData2016.zip (scripts/download_ade20k.py)",
        )


__all__ = [
    "ADE20K",
    "ADE20K_CLASSES",
    "ADE20K_INFO",
    "ADE20K_PALETTE",
    "LOOKUP",
    "resolve_dir",
]
