"""One split of a dataset (:class:`SegSplit`) and the base of the dataset objects (:class:`SegDataset`).

A dataset is a small frozen dataclass (``segkit.data.VOC``, ``Cityscapes``, ``CamVid``...) holding
its root, its options and its :class:`~segkit.data.classes.ClassInfo`; ``dataset.split(name)``
gives a :class:`SegSplit`, which holds what every reader needs: the ids, where their image and
mask files are (:class:`Files`), how mask values map to segkit's (:class:`LabelLookup`), and
``load`` / ``__getitem__`` / ``__len__``. The data configs name the dataset with ``_target_``,
so ``instantiate(cfg.data.dataset).split("val")`` is a split of any dataset.

Masks as returned are always ``0..K-1`` plus 255 (void): a dataset whose files store other
values (Cityscapes labelIds, ADE20K's reduced zero label, CamVid's void 11) maps them with one
256-entry table lookup per mask (``cv2.LUT``). A value the format does not define keeps its own
value in the table (>= K, so ``segkit.data.check`` and ``load`` flag it) and the error names it
in the format's terms.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from torch.utils.data import Dataset

from segkit.constants import IGNORE_INDEX
from segkit.data.classes import ClassInfo
from segkit.data.io import check_mask_size, check_mask_values, read_image, read_mask

log = logging.getLogger(__name__)

#: A transform in the albumentations calling convention: ``t(image=..., mask=...) -> dict``.
Transform = Callable[..., dict[str, Any]]
OnRepeat = Literal["error", "warn", "keep_first"]
MISSING_FIX = "restore the file or remove the id from the split list"


def read_id_list(path: Path, *, fix: str) -> list[str]:
    """Ids of a split list (VOC ``ImageSets/Segmentation/*.txt``, SBD ``train.txt``, a folder
    dataset's ``splits/*.txt``): one per line, blanks skipped, repeats kept. A missing file raises
    FileNotFoundError naming it and ``fix``."""
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} is missing: {fix}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def repeated_ids(ids: Sequence[str]) -> dict[str, int]:
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


@dataclass(frozen=True)
class LabelLookup:
    """File value -> segkit label.

    Args:
        table: uint8 (256,): ``table[v]`` is the label of file value ``v``.
        defined: the file values the format defines (others are defects).
        what: the format's values in words, for errors ("Cityscapes labelIds (0..33)").
        fix: what to do about a file with other values.
    """

    table: np.ndarray
    defined: frozenset[int]
    what: str
    fix: str

    @classmethod
    def build(
        cls,
        mapping: Mapping[int, int],
        *,
        defined: Iterable[int],
        num_classes: int,
        what: str,
        fix: str,
    ) -> LabelLookup:
        """``mapping`` gives the label of file values (a defined value missing from it is void);
        undefined values map to themselves, which must not be a class index."""
        defined = frozenset(int(v) for v in defined)
        table = np.arange(256, dtype=np.uint8)
        undefined = [v for v in range(256) if v not in defined and v != IGNORE_INDEX]
        if undefined and min(undefined) < num_classes:
            raise ValueError(f"file value {min(undefined)} would read as a class ({what})")
        for value in defined:
            label = mapping.get(value, IGNORE_INDEX)
            if not (0 <= label < num_classes or label == IGNORE_INDEX):
                raise ValueError(f"file value {value} maps to {label}, not a label ({what})")
            table[value] = label
        table.setflags(write=False)
        return cls(table, defined, what, fix)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """uint8 (H, W) file values -> uint8 (H, W) segkit labels (a new array).

        ``cv2.LUT`` (a vectorised table lookup) rather than numpy's ``table[raw]`` gather, which
        costs several times more on a 1024x2048 mask."""
        return cv2.LUT(raw, self.table)

    def check(self, mapped: np.ndarray, num_classes: int, *, mask_path: Path) -> None:
        """ValueError in the format's terms if ``mapped`` (from :meth:`__call__`) holds a value
        the format does not define (those kept their file value, so the message can name it)."""
        try:
            check_mask_values(mapped, num_classes, mask_path=mask_path)
        except ValueError:
            counts = np.bincount(mapped.ravel(), minlength=256)
            bad = [v for v in np.flatnonzero(counts).tolist() if v >= num_classes and v != 255]
            raise ValueError(
                f"mask file {mask_path} has values {bad} that are not {self.what}: {self.fix}"
            ) from None


@dataclass(frozen=True)
class Files:
    """Where the files of a split are: ``folder/<id><suffix>``, or ``found[id]`` for the ids a
    folder scan matched to a file (the folder dataset: any image suffix)."""

    folder: Path
    suffix: str
    found: Mapping[str, Path] | None = None

    def __call__(self, image_id: str) -> Path:
        if self.found is not None and image_id in self.found:
            return self.found[image_id]
        return self.folder / f"{image_id}{self.suffix}"


@dataclass(frozen=True)
class Layout:
    """Where the files of one split are: what a dataset knows of its release layout.

    Args:
        listed: the ids in split order, as listed (repeats handled by ``on_repeat``).
        images, masks: where the files of an id are.
        split_path: the file (or folder) the ids come from, named in messages.
        lookup: file value -> label; None: the file values are the labels, and the files' void
            value (``classes.void``) becomes 255 (a 255 in such a file is then a defect).
        empty, missing: what to do about an empty split / a missing file (the dataset's words).
        unmatched: a listing defect (files without their pair) raised when the split checks
            its files, else left to ``segkit.data.check``, which names each missing file.
    """

    listed: Sequence[str]
    images: Files
    masks: Files
    split_path: Path
    lookup: LabelLookup | None = None
    empty: str = "check the dataset's root"
    missing: str = MISSING_FIX
    unmatched: str | None = None


class SegSplit(Dataset):
    """One split of a dataset: its ids, their image and mask files, masks in segkit's labels.

    Items: ``{"image": uint8 (H, W, 3) RGB, "mask": uint8 (H, W), "id": str}`` after
    ``transform``; mask values are ``0..K-1`` and 255 (void) as returned by ``load_mask`` /
    ``load`` / ``__getitem__``. Missing files are found when the split is built (one stat per
    file); sizes and label values are checked per sample on load (``segkit.data.check`` checks
    every sample up front).

    Args:
        split: the split's name (``train``, ``val``...), shown in defects and logs.
        layout: its ids and files (:class:`Layout`).
        classes: the dataset's ClassInfo.
        transform: albumentations-style ``t(image=..., mask=...) -> dict`` or None.
        on_repeat: ids listed more than once: ``"error"`` (the default: a repeat would be scored
            twice), ``"warn"`` (log and keep the first: the training split) or ``"keep_first"``
            (silently, for a checker that reports ``repeated`` itself).
        check_files: stat every file now and raise on the first missing one; ``False`` leaves
            that to a checker that lists every defect (``segkit.data.check``).

    Attributes:
        ids: first occurrences of the listed ids; ``repeated``: ``{id: times listed}`` of repeats.
    """

    def __init__(
        self,
        split: str,
        layout: Layout,
        *,
        classes: ClassInfo,
        transform: Transform | None = None,
        on_repeat: OnRepeat = "error",
        check_files: bool = True,
    ) -> None:
        if on_repeat not in ("error", "warn", "keep_first"):
            raise ValueError(f"on_repeat must be error, warn or keep_first, got {on_repeat!r}")
        if not layout.listed:
            raise ValueError(
                f"split '{split}' has no images in {layout.split_path}: {layout.empty}"
            )
        if check_files and layout.unmatched:
            raise ValueError(layout.unmatched)
        self.split, self.classes, self.num_classes = split, classes, classes.num_classes
        self.images, self.masks, self.lookup = layout.images, layout.masks, layout.lookup
        self.split_path, self.transform, self.on_repeat = layout.split_path, transform, on_repeat
        self.repeated = repeated_ids(layout.listed)
        if self.repeated and on_repeat == "error":
            raise ValueError(repeated_ids_message(self.split_path, self.repeated, dropped=False))
        if self.repeated and on_repeat == "warn":
            log.warning(repeated_ids_message(self.split_path, self.repeated, dropped=True))
        self.ids = list(dict.fromkeys(layout.listed))  # first occurrences, in list order
        if check_files:
            self._check_files(layout.missing)

    def _check_files(self, fix: str) -> None:
        for image_id in self.ids:
            for path, kind in ((self.image_path(image_id), "image"),
                               (self.mask_path(image_id), "mask")):  # fmt: skip
                if not path.is_file():
                    raise FileNotFoundError(
                        f"{kind} file {path} for id {image_id!r} in split '{self.split}' "
                        f"({self.split_path}) is missing: {fix}"
                    )

    def image_path(self, image_id: str) -> Path:
        """The image file of ``image_id``."""
        return self.images(image_id)

    def mask_path(self, image_id: str) -> Path:
        """The mask file of ``image_id``."""
        return self.masks(image_id)

    def __len__(self) -> int:
        return len(self.ids)

    def load_mask(self, index: int) -> np.ndarray:
        """uint8 (H, W) labels of sample ``index`` without decoding the image (for statistics);
        the value range is not checked (``load`` and ``segkit.data.check`` do)."""
        path = self.mask_path(self.ids[index])
        mask = read_mask(path)
        if self.lookup is not None:
            return self.lookup(mask)
        void = self.classes.void
        if void != IGNORE_INDEX:
            if np.count_nonzero(mask == IGNORE_INDEX):
                raise ValueError(
                    f"mask file {path} has label value {IGNORE_INDEX}, which is neither a class "
                    f"(0..{self.num_classes - 1}) nor the void value {void} of the "
                    f"{self.classes.source}: fix the mask or the classes file"
                )
            mask[mask == void] = IGNORE_INDEX
        return mask

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Validated ``(image uint8 (H, W, 3), mask uint8 (H, W))``, no transform: sizes equal,
        every value a label (one-line errors naming the file, ``segkit.data.io``)."""
        image_id = self.ids[index]
        image = read_image(self.image_path(image_id))
        mask = self.load_mask(index)
        mask_path = self.mask_path(image_id)
        check_mask_size(
            image.shape[:2], mask, mask_path=mask_path, image_path=self.image_path(image_id)
        )
        check = check_mask_values if self.lookup is None else self.lookup.check
        check(mask, self.num_classes, mask_path=mask_path)
        return image, mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.load(index)
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return {"image": image, "mask": mask, "id": self.ids[index]}


class SegDataset:
    """Base of the dataset objects: frozen dataclasses with a ``root``, their options, the
    ``classes`` property and :meth:`split`. The data config's ``dataset`` node names one with
    ``_target_``, so a new dataset is one small class in one file."""

    root: str | Path
    #: The split names SegDataModule trains and validates on.
    train_split: str = "train"
    val_split: str = "val"

    @property
    def name(self) -> str:
        """The dataset's short name (its data group's: ``camvid``, ``synthetic``...), in reports."""
        return type(self).__name__.lower()

    #: The class of its splits (CamVid's adds its video sequences).
    split_class: ClassVar[type[SegSplit]] = SegSplit

    @property
    def classes(self) -> ClassInfo:
        """Names, palette and void value of the files (no image read)."""
        raise NotImplementedError

    def layout(self, name: str) -> Layout:
        """Where the ids and files of split ``name`` are; one-line errors for a missing root,
        folder or split list (what to get, where to put it)."""
        raise NotImplementedError

    def split(
        self,
        name: str,
        *,
        transform: Transform | None = None,
        on_repeat: OnRepeat = "error",
        check_files: bool = True,
    ) -> SegSplit:
        """Split ``name`` (no augmentation unless ``transform``); see :class:`SegSplit`."""
        return self.split_class(
            name,
            self.layout(name),
            classes=self.classes,
            transform=transform,
            on_repeat=on_repeat,
            check_files=check_files,
        )

    def prepare(self) -> None:
        """Generate or verify the data (the synthetic set is generated here); real data is
        never fetched."""

    def train_val(
        self, *, transform: Transform | None = None, lenient: bool = False
    ) -> dict[str, SegSplit]:
        """``{"train": train split (``transform``), "val": val split}``. ``lenient=True`` leaves
        missing files and repeated val ids to ``segkit.data.check``, which lists them with every
        other defect; otherwise the first one raises here."""
        train = self.split(
            self.train_split, transform=transform, on_repeat="warn", check_files=not lenient
        )
        val = self.split(
            self.val_split, on_repeat="keep_first" if lenient else "error", check_files=not lenient
        )
        return {"train": train, "val": val}


__all__ = [
    "Files",
    "LabelLookup",
    "Layout",
    "OnRepeat",
    "SegDataset",
    "SegSplit",
    "Transform",
    "read_id_list",
    "repeated_ids",
    "repeated_ids_message",
]
