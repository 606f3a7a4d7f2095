"""A split whose mask files store the dataset's own label values, mapped to segkit's on load.

Cityscapes stores ``labelIds`` (0..33, 19 of them trained on), ADE20K stores 0 = "other" and the
classes as 1..150. A :class:`LabelLookup` turns such a file into segkit's convention (classes
``0..K-1``, 255 void) with one 256-entry table lookup per mask (``cv2.LUT``).
A value the file format does not define keeps its own value in the table (it is >= K, so
``segkit.data.check`` and the loaders flag it) and :meth:`MappedSplit.load` words the error in the
format's terms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

from segkit.constants import IGNORE_INDEX
from segkit.data.classes import ClassInfo
from segkit.data.io import check_mask_size, check_mask_values, read_image, read_mask

Transform = Callable[..., dict[str, Any]]


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


class MappedSplit(Dataset):
    """One split: images and mask files by id, masks mapped by a :class:`LabelLookup`.

    Follows ``segkit.data.registry.SplitDataset``; subclasses give the file layout through
    ``image_path`` / ``mask_path``. The split comes from a folder listing, so no id repeats
    (``repeated`` is empty) and ``on_repeat`` has nothing to act on.

    Args:
        split: the logical split name (``train``, ``val``...).
        ids: sample ids, in order.
        classes: the dataset's ClassInfo.
        lookup: file value -> label.
        split_path: the folder the ids were listed from (named in messages).
        transform: albumentations-style ``t(image=..., mask=...) -> dict`` or None.
        on_repeat: kept for the contract (``error`` / ``warn`` / ``keep_first``).
        check_files: stat every mask now and raise on the first missing one.
    """

    def __init__(
        self,
        *,
        split: str,
        ids: list[str],
        classes: ClassInfo,
        lookup: LabelLookup,
        split_path: Path,
        transform: Transform | None = None,
        on_repeat: str = "error",
        check_files: bool = True,
    ) -> None:
        if on_repeat not in ("error", "warn", "keep_first"):
            raise ValueError(f"on_repeat must be error, warn or keep_first, got {on_repeat!r}")
        if not ids:
            raise ValueError(f"split '{split}' has no images in {split_path}: {self.empty_fix()}")
        self.split = split
        self.ids = list(ids)
        self.classes = classes
        self.num_classes = classes.num_classes
        self.lookup = lookup
        self.split_path = split_path
        self.transform = transform
        self.on_repeat = on_repeat
        self.repeated: dict[str, int] = {}
        if check_files:
            for image_id in self.ids:
                path = self.mask_path(image_id)
                if not path.is_file():
                    raise FileNotFoundError(
                        f"mask file {path} for image {self.image_path(image_id)} in split "
                        f"'{split}' is missing: {self.missing_mask_fix()}"
                    )

    # -- the layout (subclasses) -----------------------------------------------------------
    def image_path(self, image_id: str) -> Path:
        raise NotImplementedError

    def mask_path(self, image_id: str) -> Path:
        raise NotImplementedError

    def empty_fix(self) -> str:
        return "check data.root"

    def missing_mask_fix(self) -> str:
        return "restore it, or remove its image"

    # -- the contract ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def load_mask(self, index: int) -> np.ndarray:
        """uint8 (H, W) labels of sample ``index`` (file values mapped; image not decoded)."""
        return self.lookup(read_mask(self.mask_path(self.ids[index])))

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Validated ``(image uint8 (H, W, 3), mask uint8 (H, W))``: sizes equal, every file
        value defined by the format (one-line errors naming the mask file)."""
        image_id = self.ids[index]
        image = read_image(self.image_path(image_id))
        mask = self.load_mask(index)
        mask_path = self.mask_path(image_id)
        check_mask_size(
            image.shape[:2], mask, mask_path=mask_path, image_path=self.image_path(image_id)
        )
        self.lookup.check(mask, self.num_classes, mask_path=mask_path)
        return image, mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask = self.load(index)
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return {"image": image, "mask": mask, "id": self.ids[index]}


__all__ = ["LabelLookup", "MappedSplit"]
