"""The dataset registry: ``data.dataset`` name -> the reader module that builds its splits.

``SegDataModule``, evaluate and inspect_data look a dataset up here and call its reader; none of
them branches on a dataset name. Adding a dataset = writing a reader module with the
:class:`DatasetReader` functions and registering it with one :func:`register_dataset` call (below
for the built-in ones). Standard library only: the command line's pre-flight check imports it to
refuse an unknown name before torch is loaded.

The reader module provides (see :class:`DatasetReader`)::

    def classes(root: Path, options) -> ClassInfo          # names, palette, void; no image read
    def build(root: Path, split: str, *, options, classes: ClassInfo, transform,
              on_repeat: str, check_files: bool) -> SplitDataset
    Options: type | None = None      # data.options is built as Options(**data.options); None = takes none
    def locate(root: Path, options) -> Path    # optional: the folder actually read (default: root)
    def prepare(root: Path, options) -> None   # optional: generate / verify the data (default: nothing)

``root`` is ``data.root`` as given (``locate`` turns it into the folder read by ``build``, which
``prepare`` must have made ready). Every split dataset follows :class:`SplitDataset`, so
``segkit.data.check``, the loaders and the tasks work on every dataset alike.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from segkit.data.classes import ClassInfo

OnRepeat = Literal["error", "warn", "keep_first"]


@runtime_checkable
class SplitDataset(Protocol):
    """One split of a dataset, as the loaders, ``segkit.data.check`` and the tasks use it.

    Items: ``{"image": uint8 (H, W, 3) RGB, "mask": uint8 (H, W), "id": str}`` after
    ``transform``. Mask values are ``0..num_classes-1`` and 255 (void) *as returned* by
    ``load_mask`` / ``load`` / ``__getitem__``: a reader whose files store other values (label
    ids, a reduced zero label, another void value) maps them there.

    Attributes:
        split: split name (``train``, ``val``...), shown in defects and logs.
        classes: the dataset's :class:`~segkit.data.classes.ClassInfo`.
        num_classes: ``classes.num_classes``.
        ids: sample ids in split order, each once.
        transform: albumentations-style ``t(image=..., mask=...) -> dict`` or None.
        repeated: ``{id: times listed}`` for ids a split list named more than once ({} if none).
        on_repeat: ``"error"`` / ``"warn"`` / ``"keep_first"``: repeats the dataset warned about
            (``"warn"``, a training split) are not reported again by the check.
        split_path: the file (or folder) the split comes from, named in messages.
    """

    split: str
    classes: ClassInfo
    num_classes: int
    ids: list[str]
    transform: Callable[..., dict[str, Any]] | None
    repeated: dict[str, int]
    on_repeat: str
    split_path: Path

    def image_path(self, image_id: str) -> Path:
        """The image file of ``image_id``."""
        ...

    def mask_path(self, image_id: str) -> Path:
        """The mask file of ``image_id``."""
        ...

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Validated ``(image uint8 (H, W, 3), mask uint8 (H, W))``, no transform; the readers'
        one-line errors (``segkit.data.io``) for a missing/corrupt file, a size or value defect."""
        ...

    def load_mask(self, index: int) -> np.ndarray:
        """The mask of sample ``index`` (values mapped as in ``load``) without decoding the image;
        value range not checked (``segkit.data.check`` does it, statistics count every value)."""
        ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


class DatasetReader(Protocol):
    """What a reader module provides (module-level names; see the module docstring)."""

    Options: type | None

    def classes(self, root: Path, options: Any) -> ClassInfo: ...

    def build(
        self,
        root: Path,
        split: str,
        *,
        options: Any,
        classes: ClassInfo,
        transform: Callable[..., dict[str, Any]] | None,
        on_repeat: OnRepeat,
        check_files: bool,
    ) -> SplitDataset: ...


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset.

    Args:
        name: the ``data.dataset`` value.
        reader: dotted name of the reader module (imported on first use).
        summary: a few words naming the data, used in messages ("Pascal VOC 2012").
        train_split, val_split: the split names SegDataModule trains and validates on.
        root_check: optional ``"module:function"`` of a standard-library-only ``f(root)`` that
            raises the missing-root error (the pre-flight check calls it before torch loads).
    """

    name: str
    reader: str
    summary: str
    train_split: str = "train"
    val_split: str = "val"
    root_check: str | None = None

    def module(self) -> ModuleType:
        """The reader module (a :class:`DatasetReader`)."""
        try:
            return importlib.import_module(self.reader)
        except ModuleNotFoundError as err:
            if err.name != self.reader:
                raise
            raise ValueError(
                f"data.dataset={self.name}: its reader {self.reader} is not in this installation "
                "(update segkit, or pick another data=... group)"
            ) from None

    def check_root(self, root: str | Path) -> None:
        """Run ``root_check`` (if any) on ``root``."""
        if self.root_check is None:
            return
        module, function = self.root_check.split(":")
        getattr(importlib.import_module(module), function)(root)


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Add ``entry``; ValueError if its name is taken by another entry (re-registering the same
    entry is a no-op, so a reader module can register itself on import)."""
    old = _REGISTRY.get(entry.name)
    if old is not None and old != entry:
        raise ValueError(f"dataset {entry.name!r} is already registered ({old.reader})")
    _REGISTRY[entry.name] = entry
    return entry


def dataset_names() -> tuple[str, ...]:
    """Registered ``data.dataset`` names, in registration order."""
    return tuple(_REGISTRY)


def dataset_entry(name: Any) -> DatasetEntry:
    """The entry of ``name``; ValueError naming ``data.dataset`` and the registered names."""
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ValueError(
            f"data.dataset must be one of {', '.join(_REGISTRY)}, got {name!r} "
            "(pick a data=... group, or register a reader in segkit.data.registry)"
        )
    return entry


def reader_options(entry: DatasetEntry, options: Any) -> Any:
    """``data.options`` as the reader's ``Options`` object: a mapping is unpacked into it (an
    unknown key is a ValueError naming it), an ``Options`` instance is kept, None means the
    defaults (``Options()``, or None for a reader that takes no options)."""
    options_type = getattr(entry.module(), "Options", None)
    if options_type is None:
        if options:
            raise ValueError(
                f"data.dataset={entry.name} takes no data.options, got {options!r}: remove them"
            )
        return None
    if isinstance(options, options_type):
        return options
    if options is None:
        options = {}
    if not isinstance(options, Mapping):  # a dict, or an omegaconf DictConfig
        raise ValueError(
            f"data.options of data.dataset={entry.name} must be a mapping of "
            f"{options_type.__name__} fields, got {options!r}"
        )
    fields = getattr(options_type, "__dataclass_fields__", {})
    unknown = sorted(set(options) - set(fields)) if fields else []
    if unknown:
        raise ValueError(
            f"data.options.{unknown[0]} is not an option of data.dataset={entry.name} "
            f"(options: {', '.join(fields)})"
        )
    return options_type(**{str(k): v for k, v in options.items()})


def reader_locate(entry: DatasetEntry, root: Path, options: Any) -> Path:
    """The folder ``entry``'s reader reads for ``data.root=root`` (its ``locate``, else root)."""
    locate = getattr(entry.module(), "locate", None)
    return Path(root) if locate is None else Path(locate(Path(root), options))


def reader_prepare(entry: DatasetEntry, root: Path, options: Any) -> None:
    """Run the reader's ``prepare`` (generate / verify), if it has one."""
    prepare = getattr(entry.module(), "prepare", None)
    if prepare is not None:
        prepare(Path(root), options)


# The built-in datasets. A new one: a reader module (see the module docstring) and one line here.
register_dataset(
    DatasetEntry(
        "voc",
        "segkit.data.voc",
        "Pascal VOC 2012",
        root_check="segkit.checks:resolve_voc_dir",
    )
)
register_dataset(
    DatasetEntry(
        "voc_aug",
        "segkit.data.voc",
        "Pascal VOC 2012 + SBD (trainaug)",
        train_split="trainaug",
        root_check="segkit.checks:resolve_voc_dir",
    )
)
register_dataset(DatasetEntry("synthetic", "segkit.data.synthetic", "the synthetic set"))
register_dataset(DatasetEntry("folder", "segkit.data.folder", "the folder dataset"))
register_dataset(DatasetEntry("cityscapes", "segkit.data.cityscapes", "Cityscapes"))
register_dataset(DatasetEntry("ade20k", "segkit.data.ade20k", "ADE20K (SceneParsing)"))
register_dataset(
    DatasetEntry(
        "camvid",
        "segkit.data.camvid",
        "CamVid (SegNet)",
        root_check="segkit.data.camvid_layout:check_root",
    )
)

__all__ = [
    "DatasetEntry",
    "DatasetReader",
    "OnRepeat",
    "SplitDataset",
    "dataset_entry",
    "dataset_names",
    "reader_locate",
    "reader_options",
    "reader_prepare",
    "register_dataset",
]
