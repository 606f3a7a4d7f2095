"""Label maps as pictures: colour maps, image overlays and class legends (and label PNGs, written
by ``segkit.data.save_mask``).

The one blend of segkit: evaluate's best/worst grid, predict's overlays, the inspect grid and the demo
picture all colour labels here, in the colours of the dataset's ``ClassInfo`` (figures are laid out by
``segkit.evaluation.report``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from segkit.constants import IGNORE_INDEX
from segkit.data.classes import ClassInfo

#: Legend name of the void label (255): boundaries / "don't care" pixels, not scored.
VOID_NAME = "void (not scored)"


@functools.lru_cache(maxsize=16)
def colour_lut(classes: ClassInfo) -> np.ndarray:
    """(256, 3) uint8 lookup table of ``classes``: label value -> RGB (255 = void colour)."""
    return np.asarray(classes.colour_table(), dtype=np.uint8)


def colorize(labels: np.ndarray, classes: ClassInfo) -> np.ndarray:
    """(H, W) integer labels (0..255) -> (H, W, 3) uint8 RGB in the dataset's palette."""
    return colour_lut(classes)[np.asarray(labels, dtype=np.uint8)]


def save_label_png(path: str | Path, labels: np.ndarray, classes: ClassInfo) -> Path:
    """Write ``labels`` (H, W) as a palette PNG in the dataset's colours (``segkit.data.save_mask``,
    the one writer of label files; readable back by ``segkit.data.read_mask``), creating its
    folder."""
    from segkit.data import save_mask

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_mask(path, labels, classes)
    return path


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    classes: ClassInfo,
    *,
    alpha: float = 0.5,
    void: bool = False,
) -> np.ndarray:
    """Blend the colour map of ``labels`` (H, W) onto ``image`` (H, W, 3) uint8.

    The dataset's background class (``classes.background``, e.g. VOC's 0; none for Cityscapes)
    keeps the image untouched so objects stand out; void (255) pixels too, unless ``void`` (the
    data inspection shows where the void borders are).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay alpha must be in [0, 1], got {alpha}")
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    colours = colorize(labels, classes).astype(np.float32)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    objects = np.ones(labels.shape, bool) if void else labels != IGNORE_INDEX
    if classes.background is not None:
        objects &= labels != classes.background
    out = image.copy()
    out[objects] = np.clip(blended[objects] + 0.5, 0, 255).astype(np.uint8)
    return out


def present_labels(label_maps: Iterable[np.ndarray], num_classes: int) -> list[int]:
    """Sorted label values found in any of ``label_maps``: classes ``0..num_classes-1`` and void
    (255) when present; other values are not class labels and are left out."""
    found: set[int] = set()
    for labels in label_maps:
        found.update(int(v) for v in np.unique(np.asarray(labels)))
    return sorted(v for v in found if v < num_classes or v == IGNORE_INDEX)


def legend_entries(labels: Sequence[int], classes: ClassInfo) -> list[tuple[str, tuple]]:
    """``(name, RGB in 0..1)`` per label value, void named :data:`VOID_NAME`."""
    lut, names = colour_lut(classes), classes.names
    out = []
    for k in labels:
        name = VOID_NAME if k == IGNORE_INDEX else names[k] if k < len(names) else str(k)
        out.append((name, tuple(float(c) / 255 for c in lut[k])))
    return out


def legend_image(labels: Sequence[int], classes: ClassInfo, *, swatch: int = 18) -> Image.Image:
    """An RGB picture of the legend: one row per label value, its colour swatch and its name."""
    entries = legend_entries(labels, classes)
    font = ImageFont.load_default()
    pad, row = 6, swatch + 6
    width = pad * 3 + swatch + max((int(font.getlength(n)) for n, _ in entries), default=40)
    image = Image.new("RGB", (width, pad * 2 + row * max(1, len(entries))), "white")
    draw = ImageDraw.Draw(image)
    for i, (name, rgb) in enumerate(entries):
        y = pad + i * row
        fill = tuple(int(round(255 * c)) for c in rgb)
        draw.rectangle([pad, y, pad + swatch, y + swatch], fill=fill, outline="black")
        draw.text((pad * 2 + swatch, y + swatch // 2), name, fill="black", font=font, anchor="lm")
    return image


def save_legend(path: str | Path, labels: Sequence[int], classes: ClassInfo) -> Path:
    """Write :func:`legend_image` as a PNG (predict writes one next to its overlays)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    legend_image(labels, classes).save(path)
    return path
