"""Your own data (``data=folder``): a folder of images, a folder of masks matched by file stem, and a
small classes file. ``data/README.md`` walks through the smallest working example.

Layout (names are the defaults of :class:`Folder`)::

    <root>/images/<stem>.jpg|.jpeg|.png|.bmp|.tif|.tiff|.webp
    <root>/masks/<stem>.png           palette or greyscale PNG, pixel value = class index
    <root>/classes.yaml               (or .yml / .json) names, optional palette / void / background
    <root>/splits/{train,val}.txt     optional: one stem per line; without them the stems are split
                                      by ``val_fraction`` with ``split_seed`` (the same split every run)

The classes file::

    names: [background, crack, rust]     # index = label value
    palette: [[0, 0, 0], [255, 0, 0], [0, 0, 255]]   # optional, one [R, G, B] per class
    void: 255                            # optional: value of "don't care" pixels (default 255)
    background: background               # optional: class left uncoloured in overlays

Every defect is one line naming the file and the fix: an image without a mask and a mask without
an image (both named), a mask that is not a PNG, two images with one stem, a label value outside
the classes, a mask of another size than its image, an unknown classes-file format or key, a
missing root, folder or classes file. Nothing falls back silently.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from segkit.constants import IGNORE_INDEX, IMAGE_SUFFIXES
from segkit.data.classes import ClassInfo
from segkit.data.split import Files, Layout, SegDataset, read_id_list

CLASS_FILE_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")
CLASS_FILE_KEYS: tuple[str, ...] = ("names", "palette", "void", "background")
README = "data/README.md"
#: Stems named in one message at most.
_SHOWN = 5


@dataclass(frozen=True)
class Folder(SegDataset):
    """Your own images and masks (``data=folder``); relative paths are under ``root``.

    Args:
        root: the folder holding them (``data.root``).
        images: folder of images.
        masks: folder of masks (``<stem>.png``).
        classes_file: the classes file (``.yaml`` / ``.yml`` / ``.json``).
        splits: folder of split lists ``<split>.txt`` (one stem per line), or None to split the
            matched stems by ``val_fraction``.
        val_fraction: share of the stems in ``val`` when there are no split lists, in (0, 1).
        split_seed: seed of that split (stems sorted, then shuffled with it).
    """

    root: str | Path
    images: str = "images"
    masks: str = "masks"
    classes_file: str = "classes.yaml"
    splits: str | None = None
    val_fraction: float = 0.2
    split_seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < float(self.val_fraction) < 1.0:
            raise ValueError(
                f"val_fraction must be in (0, 1), got {self.val_fraction} "
                "(e.g. 0.2: a fifth of the images for validation)"
            )

    @cached_property
    def classes(self) -> ClassInfo:  # type: ignore[override]
        """The classes file's metadata (a missing root or file: one line saying what to write)."""
        check_root(Path(self.root))
        return read_classes_file(_under(Path(self.root), self.classes_file))

    def layout(self, name: str) -> Layout:
        root = Path(self.root)
        check_root(root)
        image_dir, mask_dir = _under(root, self.images), _under(root, self.masks)
        images, masks = scan(image_dir, mask_dir)
        no_mask = sorted(set(images) - set(masks))
        no_image = sorted(set(masks) - set(images))
        if self.splits is not None:
            split_path = _under(root, self.splits) / f"{name}.txt"
            fix = "write it (one image stem per line) or pick another split"
            listed = read_id_list(split_path, fix=fix)
        else:
            split_path = image_dir
            splits = ratio_split(sorted(set(images) | set(masks)), float(self.val_fraction),
                                 int(self.split_seed))  # fmt: skip
            if name not in splits:
                raise ValueError(
                    f"split {name!r} does not exist: without split lists the folder dataset has "
                    "train and val (val_fraction); for other splits give "
                    "splits=<folder of <split>.txt lists>"
                )
            listed = splits[name]
        return Layout(
            listed,
            # An id without an image (lenient mode only) is named by its stem and any suffix.
            images=Files(image_dir, ".*", images),
            masks=Files(mask_dir, ".png", masks),
            split_path=split_path,
            empty=f"list the stems of the {name} images, one per line",
            missing="add the file or remove the id",
            unmatched=unmatched_message(image_dir, mask_dir, no_mask, no_image)
            if no_mask or no_image
            else None,
        )


def _under(root: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else root / path


def _shown(names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def check_root(root: Path) -> None:
    """FileNotFoundError when the data root does not exist."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"data root {root} does not exist: set root to the folder holding images/, "
            f"masks/ and classes.yaml (see {README})"
        )


def read_classes_file(path: Path) -> ClassInfo:
    """The :class:`ClassInfo` of a classes file; one-line errors naming the file and the fix."""
    if path.suffix.lower() not in CLASS_FILE_SUFFIXES:
        raise ValueError(
            f"classes file {path} has an unknown format ({path.suffix or 'no suffix'}): write it "
            f"as YAML (.yaml/.yml) or JSON (.json) with a 'names' list (see {README})"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"classes file {path} is missing: write it with the class names, e.g. "
            f"'names: [background, object]' (see {README}), or set classes_file"
        )
    text = path.read_text()
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        detail = str(err).splitlines()[0]
        raise ValueError(
            f"classes file {path} cannot be parsed ({detail}): fix its syntax"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("names"), list):
        raise ValueError(
            f"classes file {path} must be a mapping with a 'names' list, e.g. "
            f"'names: [background, object]' (see {README})"
        )
    unknown = sorted(set(doc) - set(CLASS_FILE_KEYS))
    if unknown:
        raise ValueError(
            f"classes file {path} has unknown key(s) {unknown}: the keys are "
            f"{', '.join(CLASS_FILE_KEYS)}"
        )
    names = doc["names"]
    background = doc.get("background")
    if background is not None:
        if background not in names:
            raise ValueError(
                f"classes file {path}: background {background!r} is not one of its names"
            )
        background = names.index(background)
    void = doc.get("void", IGNORE_INDEX)
    palette = doc.get("palette")
    if palette is not None and not isinstance(palette, list):
        raise ValueError(f"classes file {path}: palette must be a list of [R, G, B]")
    return ClassInfo(
        names=tuple(names),
        palette=None if palette is None else tuple(palette),
        void=void,
        background=background,
        source=f"classes file {path}",
    )


def scan(images: Path, masks: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """``({stem: image file}, {stem: mask file})``; a missing folder, a non-PNG mask or two
    images with one stem raise (one line naming them)."""
    for folder, what in ((images, "images"), (masks, "masks")):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{what} folder {folder} is missing: put the {what} there or set "
                f"{what}=<folder> (see {README})"
            )
    found: dict[str, list[Path]] = {}
    for path in sorted(images.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(path.stem, []).append(path)
    doubles = [f"{paths[0].stem} ({', '.join(p.name for p in paths)})" for paths in found.values()
               if len(paths) > 1]  # fmt: skip
    if doubles:
        raise ValueError(
            f"{len(doubles)} stem(s) in {images} name several images: {_shown(doubles)}; keep "
            "one image per stem (masks are matched by stem)"
        )
    mask_files = [p for p in sorted(masks.iterdir()) if p.is_file()]
    not_png = [p.name for p in mask_files if p.suffix.lower() != ".png"]
    if not_png:
        raise ValueError(
            f"{len(not_png)} file(s) in {masks} are not PNGs ({_shown(not_png)}): masks must be "
            "palette or greyscale PNGs of class indices (lossy formats change label values)"
        )
    return {stem: paths[0] for stem, paths in found.items()}, {p.stem: p for p in mask_files}


def unmatched_message(images: Path, masks: Path, no_mask: list[str], no_image: list[str]) -> str:
    """One line naming the images without a mask and the masks without an image."""
    parts = []
    if no_mask:
        parts.append(f"{len(no_mask)} image(s) in {images} have no mask in {masks} "
                     f"({_shown(no_mask)})")  # fmt: skip
    if no_image:
        parts.append(f"{len(no_image)} mask(s) in {masks} have no image in {images} "
                     f"({_shown(no_image)})")  # fmt: skip
    return (
        "; ".join(parts) + ": images and masks are matched by file stem (a.jpg <-> a.png): add "
        "the missing files or remove the unmatched ones"
    )


def ratio_split(stems: list[str], val_fraction: float, seed: int) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...]}``: ``stems`` sorted, shuffled with ``seed``, the first
    ``round(n * val_fraction)`` (at least 1, at most n - 1) to val; each split sorted."""
    if len(stems) < 2:
        raise ValueError(
            f"the folder dataset has {len(stems)} image(s): a train/val split needs at least 2"
        )
    order = sorted(stems)
    random.Random(seed).shuffle(order)
    n_val = min(max(1, round(len(order) * val_fraction)), len(order) - 1)
    return {"train": sorted(order[n_val:]), "val": sorted(order[:n_val])}


__all__ = [
    "CLASS_FILE_SUFFIXES",
    "IMAGE_SUFFIXES",
    "Folder",
    "ratio_split",
    "read_classes_file",
    "scan",
]
