"""Class weights from a split's label statistics: median-frequency balancing.

Median-frequency balancing (Eigen & Fergus, ICCV 2015, sec. 4.2; used by SegNet, TPAMI 2017,
sec. 3.2): ``w_c = median(f) / f_c`` with ``f_c`` = pixels of class ``c`` / total pixels of the
images in which ``c`` appears. Void pixels are left out of every count (they carry no loss).

The statistics are computed once per split content: masks only (``load_mask``, no image decoded),
in threads, then cached as JSON keyed by a hash of the split's file names, sizes and mtimes
(:func:`split_key`), so a changed, added or removed mask recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from segkit.data.split import SegSplit

#: Bump when the statistics below change meaning: old cache entries are then ignored.
CACHE_VERSION = 1


@dataclass(frozen=True)
class ClassPixelStats:
    """Label statistics of one split (void excluded everywhere).

    Attributes:
        class_pixels: per class, its pixels over the split.
        present_pixels: per class, the labelled pixels of the images in which it appears.
        images_present: per class, the number of images in which it appears.
        total_pixels: labelled pixels of the whole split.
        images: images in the split.
        key: the content key (:func:`split_key`) the statistics belong to.
        seconds: time the counting took (0 when read from the cache).
    """

    class_pixels: tuple[int, ...]
    present_pixels: tuple[int, ...]
    images_present: tuple[int, ...]
    total_pixels: int
    images: int
    key: str
    seconds: float = 0.0

    def frequencies(self, *, over: str = "present") -> list[float]:
        """``f_c``: class pixels / labelled pixels of the images where ``c`` appears
        (``over="present"``, Eigen & Fergus) or of every image (``over="all"``)."""
        totals = self.present_pixels if over == "present" else [self.total_pixels] * len(self)
        return [p / t if t else 0.0 for p, t in zip(self.class_pixels, totals, strict=True)]

    def __len__(self) -> int:
        return len(self.class_pixels)


def median_frequency(frequencies: list[float], names: tuple[str, ...] | None = None) -> list[float]:
    """``median(f) / f_c`` per class; ValueError naming a class that never appears (no weight
    can be derived for it)."""
    absent = [k for k, f in enumerate(frequencies) if f <= 0]
    if absent:
        which = ", ".join(names[k] if names else str(k) for k in absent)
        raise ValueError(
            f"median-frequency class weights: class {which} never appears in the train split, "
            "so no weight can be derived for it; give class_weight as a list of one weight per "
            "class instead"
        )
    median = statistics.median(frequencies)
    return [median / f for f in frequencies]


def split_key(dataset: SegSplit) -> str:
    """SHA-256 over the split's class count, ids and each mask file's name, size and mtime."""
    digest = hashlib.sha256(f"v{CACHE_VERSION} K={dataset.num_classes}\n".encode())
    for image_id in dataset.ids:
        path = dataset.mask_path(image_id)
        stat = path.stat()
        digest.update(f"{image_id}\t{path.name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _count(dataset: SegSplit, index: int, k: int) -> np.ndarray:
    counts = np.bincount(dataset.load_mask(index).ravel(), minlength=256)
    return counts[:k].astype(np.int64)


def count_pixels(dataset: SegSplit, *, workers: int = 1) -> ClassPixelStats:
    """Count the split's label pixels (masks only, ``workers`` threads: decoders release the GIL)."""
    start = time.perf_counter()
    k = dataset.num_classes
    with ThreadPoolExecutor(max(1, workers)) as pool:
        per_image = list(pool.map(lambda i: _count(dataset, i, k), range(len(dataset))))
    counts = np.stack(per_image) if per_image else np.zeros((0, k), np.int64)  # (N, K)
    labelled = counts.sum(1, keepdims=True)  # (N, 1) non-void pixels per image
    present = counts > 0
    return ClassPixelStats(
        class_pixels=tuple(int(v) for v in counts.sum(0)),
        present_pixels=tuple(int(v) for v in (present * labelled).sum(0)),
        images_present=tuple(int(v) for v in present.sum(0)),
        total_pixels=int(labelled.sum()),
        images=len(per_image),
        key=split_key(dataset),
        seconds=round(time.perf_counter() - start, 3),
    )


def class_pixel_stats(
    dataset: SegSplit, *, cache_dir: Path | None = None, workers: int = 1
) -> ClassPixelStats:
    """:func:`count_pixels`, read from ``cache_dir/<key>.json`` when the split is unchanged and
    written there (atomically) otherwise; ``cache_dir=None`` counts every time."""
    key = split_key(dataset)
    path = None if cache_dir is None else Path(cache_dir) / f"{key}.json"
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text())
            return ClassPixelStats(**{**data, **{f: tuple(data[f]) for f in _TUPLES}}, seconds=0.0)
        except (ValueError, TypeError, KeyError):
            pass  # a damaged entry is recomputed and rewritten
    stats = count_pixels(dataset, workers=workers)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump({k: v for k, v in asdict(stats).items() if k != "seconds"}, f)
        os.replace(tmp, path)
    return stats


_TUPLES = ("class_pixels", "present_pixels", "images_present")

__all__ = [
    "CACHE_VERSION",
    "ClassPixelStats",
    "class_pixel_stats",
    "count_pixels",
    "median_frequency",
    "split_key",
]
