"""Class metadata of a dataset: names, colours, the void value of its mask files.

A :class:`ClassInfo` is owned by the dataset (its reader builds it) and travels from there to every
consumer: the model head (``num_classes``), the metrics and plots (names), the overlays, legends and
label PNGs (palette), and the checkpoint (``to_dict`` / ``from_dict``), so evaluate, predict and
export of a checkpoint know the classes without the data config.

Label values in segkit: ``0..num_classes-1`` are classes and ``IGNORE_INDEX`` (255) is void, in
every mask a reader returns and every batch. ``void`` is the value that marks void in a dataset's
*files*; a reader whose files use another value maps it to 255 on load. Standard library only
(the command line and the checkpoint readers import it without numpy or torch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from segkit.constants import IGNORE_INDEX

RGB = tuple[int, int, int]

#: Colour of void pixels in label PNGs, overlays and legends (the VOC tools' choice, kept for all).
VOID_COLOUR: RGB = (224, 224, 192)


def label_colormap(n: int = 256) -> tuple[RGB, ...]:
    """The DeepLab / VOC label colormap: the bits of the label index spread over the high bits of
    R, G and B. Distinct colours for any ``n <= 256``; the default palette of a dataset without one."""
    colours = []
    for label in range(n):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


def _rgb(value: Any, where: str) -> RGB:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 3
        or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    ):
        raise ValueError(f"{where} must be [R, G, B] with integers 0..255, got {value!r}")
    return (int(value[0]), int(value[1]), int(value[2]))


@dataclass(frozen=True)
class ClassInfo:
    """The classes of a dataset.

    Args:
        names: one name per class, index = label value (1 to 255 classes; 255 is void).
        palette: one RGB colour per class; None = the first ``num_classes`` colours of
            :func:`label_colormap`.
        void: the value marking void ("don't care") pixels in the dataset's mask files: 255, or
            any value that is not a class index (a reader maps it to ``IGNORE_INDEX``).
        background: index of the class overlays leave uncoloured (VOC's "background"); None =
            every class is coloured.
    """

    names: tuple[str, ...]
    palette: tuple[RGB, ...] | None = None
    void: int = IGNORE_INDEX
    background: int | None = None
    #: where the metadata came from, named in errors (a classes file, "Pascal VOC"...)
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = f" ({self.source})" if self.source else ""
        names = tuple(self.names)
        if not 1 <= len(names) <= IGNORE_INDEX:
            raise ValueError(
                f"a dataset needs 1 to {IGNORE_INDEX} classes{where}, got {len(names)} "
                f"(label {IGNORE_INDEX} is void)"
            )
        for k, name in enumerate(names):
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"class {k}{where} needs a non-empty name, got {name!r}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"class names{where} must be unique, repeated: {repeated}")
        if self.palette is None:
            palette = label_colormap(len(names))
        else:
            palette = tuple(
                _rgb(c, f"palette entry {k}{where}") for k, c in enumerate(self.palette)
            )
            if len(palette) != len(names):
                raise ValueError(
                    f"the palette{where} has {len(palette)} colours for {len(names)} classes: "
                    "give one [R, G, B] per class, or none"
                )
        if isinstance(self.void, bool) or not isinstance(self.void, int):
            raise ValueError(f"the void value{where} must be an integer, got {self.void!r}")
        if not len(names) <= self.void <= 255:
            raise ValueError(
                f"the void value{where} must be in {len(names)}..255 (not a class index of the "
                f"{len(names)} classes), got {self.void}"
            )
        if self.background is not None and not 0 <= self.background < len(names):
            raise ValueError(
                f"background{where} must be a class index 0..{len(names) - 1}, got {self.background}"
            )
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "palette", palette)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def colour_table(self) -> tuple[RGB, ...]:
        """256 RGB entries, label value -> colour: the palette, void (255) in :data:`VOID_COLOUR`,
        black elsewhere (the palette of label PNGs; overlays index it with any uint8 label)."""
        table: list[RGB] = [(0, 0, 0)] * 256
        table[: self.num_classes] = self.palette  # type: ignore[assignment]
        table[IGNORE_INDEX] = VOID_COLOUR
        return tuple(table)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able form (stored in checkpoints, exported model metadata)."""
        return {
            "names": list(self.names),
            "palette": [list(c) for c in self.palette or ()],
            "void": self.void,
            "background": self.background,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "") -> ClassInfo:
        """The inverse of :meth:`to_dict`; ValueError naming ``source`` on a malformed document."""
        if not isinstance(data, Mapping) or "names" not in data:
            raise ValueError(f"class metadata{' in ' + source if source else ''} has no 'names'")
        palette = data.get("palette")
        return cls(
            names=tuple(data["names"]),
            palette=None if palette is None else tuple(tuple(c) for c in palette),  # type: ignore[misc]
            void=int(data.get("void", IGNORE_INDEX)),
            background=data.get("background"),
            source=source,
        )

    @classmethod
    def numbered(cls, num_classes: int, *, source: str = "") -> ClassInfo:
        """``class 0 .. class K-1`` in the default colours (a dataset that names none)."""
        return cls(names=tuple(f"class {k}" for k in range(num_classes)), source=source)


def class_names(classes: ClassInfo | Sequence[str]) -> tuple[str, ...]:
    """The names of ``classes`` (a ClassInfo, or already a sequence of names)."""
    return classes.names if isinstance(classes, ClassInfo) else tuple(classes)


__all__ = ["RGB", "VOID_COLOUR", "ClassInfo", "class_names", "label_colormap"]
