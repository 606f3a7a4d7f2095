"""Check every sample of some splits up front and list *all* defects, not just the first.

Used before training (``SegDataModule.setup``, so a corrupt val image fails the run before the first
step instead of at the first validation) and by the ``inspect_data`` task. Per sample it finds what
loading would raise later: a missing, unreadable, truncated or corrupt image, a mask that is missing,
not a palette/greyscale PNG, of another size than its image, or with labels outside ``0..K-1`` and
255 (as the dataset's ``load_mask`` returns them, after its own label mapping); per split list, ids
listed more than once. The messages are the readers' own (``segkit.data.io``), so they name the
file and the fix. Works on any ``segkit.data.split.SegSplit``.

Levels: ``"full"`` decodes images and masks (what a loader does); ``"headers"`` reads only the image
headers (size and format) and still decodes masks (label values need the pixels), which skips the
most expensive step but cannot see a truncated or corrupt image body. The work is spread over threads:
OpenCV and Pillow release the GIL while decoding, so threads scale without the start-up and pickling
cost of processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from segkit.data.io import check_mask_size, check_mask_values, read_image, read_image_size
from segkit.data.split import SegSplit, repeated_ids_message

Level = Literal["full", "headers"]
LEVELS: tuple[str, ...] = ("full", "headers")
#: Samples per task handed to a thread: large enough to amortise the scheduling, small enough
#: for a smooth progress bar.
_CHUNK = 16


@dataclass(frozen=True)
class Defect:
    """One problem found: ``image_id`` is None for a problem of the split list itself."""

    split: str
    image_id: str | None
    message: str

    def __str__(self) -> str:
        return (
            f"[{self.split}{'' if self.image_id is None else ' ' + self.image_id}] {self.message}"
        )


@dataclass
class CheckReport:
    """What ``check_datasets`` found.

    Attributes:
        samples: samples checked per split, in the order given.
        defects: every defect, by split then list order.
        seconds: wall time of the check.
        level: ``"full"`` or ``"headers"``.
        label_pixels: (256,) int64 pixel count per mask value over every readable mask
            (only when asked for with ``count_labels=True``).
    """

    samples: dict[str, int]
    defects: list[Defect] = field(default_factory=list)
    seconds: float = 0.0
    level: str = "full"
    label_pixels: np.ndarray | None = None

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    def defects_by_split(self) -> dict[str, int]:
        counts = dict.fromkeys(self.samples, 0)
        for defect in self.defects:
            counts[defect.split] = counts.get(defect.split, 0) + 1
        return counts

    def summary(self) -> str:
        """One line: how many samples of which splits, what was found, how long it took."""
        where = f"{self.total:,} samples of {', '.join(self.samples)} ({self.level} check, " + (
            f"{self.seconds:.1f} s)"
        )
        if not self.defects:
            return f"{where}: no defect found"
        return f"{where}: {self.count()}"

    def count(self) -> str:
        """``"3 defects (train 1, val 2)"``: the number of defects and where they are."""
        per_split = ", ".join(f"{s} {n}" for s, n in self.defects_by_split().items() if n)
        n = len(self.defects)
        return f"{n} defect{'' if n == 1 else 's'} ({per_split})"

    def error(self, hint: str, *, shown: int = 5) -> ValueError:
        """A ValueError with the summary, the first ``shown`` defects and ``hint`` (the fix)."""
        lines = [f"data check: {self.summary()}"]
        lines += [f"  {d}" for d in self.defects[:shown]]
        if len(self.defects) > shown:
            lines.append(f"  ... and {len(self.defects) - shown} more")
        lines.append(hint)
        return ValueError("\n".join(lines))


def sample_defects(
    dataset: SegSplit, index: int, *, level: Level = "full"
) -> tuple[list[str], np.ndarray | None]:
    """Every problem of sample ``index`` (each a reader's message) and its mask, if readable."""
    image_id = dataset.ids[index]
    problems: list[str] = []
    image_hw: tuple[int, int] | None = None
    try:
        path = dataset.image_path(image_id)
        image_hw = read_image(path).shape[:2] if level == "full" else read_image_size(path)
    except (ValueError, OSError) as err:
        problems.append(str(err))
    mask_path = dataset.mask_path(image_id)
    try:
        mask = dataset.load_mask(index)  # as the dataset delivers it (label ids mapped...)
    except (ValueError, OSError) as err:
        problems.append(str(err))
        return problems, None
    if image_hw is not None:
        try:
            check_mask_size(image_hw, mask, mask_path=mask_path, image_path=path)
        except ValueError as err:
            problems.append(str(err))
    try:
        check_mask_values(mask, dataset.num_classes, mask_path=mask_path)
    except ValueError as err:
        problems.append(str(err))
    return problems, mask


def _check_chunk(
    dataset: SegSplit, indices: range, level: Level, count_labels: bool
) -> tuple[list[tuple[int, str]], np.ndarray | None]:
    found: list[tuple[int, str]] = []
    counts = np.zeros(256, np.int64) if count_labels else None
    for index in indices:
        problems, mask = sample_defects(dataset, index, level=level)
        found += [(index, message) for message in problems]
        if counts is not None and mask is not None:
            counts += np.bincount(mask.ravel(), minlength=256)
    return found, counts


def check_datasets(
    datasets: Sequence[SegSplit],
    *,
    level: Level = "full",
    workers: int = 1,
    count_labels: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CheckReport:
    """Check every sample of every dataset with ``workers`` threads; never raises for a defect.

    Build the datasets with ``check_files=False`` (a missing file is then one defect among the others
    instead of an exception) and ``on_repeat="keep_first"`` where a repeated id is a defect: ids that a
    dataset warns about (``on_repeat="warn"``, the training split) are not reported again.
    ``progress(n)`` is called after each chunk with the number of samples it checked.
    """
    if level not in LEVELS:
        raise ValueError(f"check level must be one of {LEVELS}, got {level!r}")
    if workers < 1:
        raise ValueError(f"check workers must be >= 1, got {workers}")
    start = time.perf_counter()
    report = CheckReport(samples={ds.split: len(ds) for ds in datasets}, level=level)
    jobs = [
        (k, range(i, min(i + _CHUNK, len(ds))))
        for k, ds in enumerate(datasets)
        for i in range(0, len(ds), _CHUNK)
    ]
    found: list[list[tuple[int, str]]] = [[] for _ in datasets]
    counts = np.zeros(256, np.int64) if count_labels else None
    # Results are gathered in submission order, so the defects come out in split-list order.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(_check_chunk, datasets[k], indices, level, count_labels)
            for k, indices in jobs
        ]
        for (k, indices), future in zip(jobs, futures, strict=True):
            chunk_found, chunk_counts = future.result()
            found[k] += chunk_found
            if counts is not None and chunk_counts is not None:
                counts += chunk_counts
            if progress is not None:
                progress(len(indices))
    for ds, ds_found in zip(datasets, found, strict=True):
        if ds.repeated and ds.on_repeat != "warn":
            report.defects.append(
                Defect(
                    ds.split, None, repeated_ids_message(ds.split_path, ds.repeated, dropped=False)
                )
            )
        report.defects += [Defect(ds.split, ds.ids[i], msg) for i, msg in ds_found]
    report.seconds = time.perf_counter() - start
    report.label_pixels = counts
    return report
