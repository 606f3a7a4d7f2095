"""Label maps as pictures: VOC-palette PNGs, colour maps and image overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segkit.constants import IGNORE_INDEX, VOC_PALETTE

#: (256, 3) uint8 lookup table: label value -> RGB (255 = void colour).
PALETTE = np.asarray(VOC_PALETTE, dtype=np.uint8)


def colorize(labels: np.ndarray) -> np.ndarray:
    """(H, W) integer labels (0..255) -> (H, W, 3) uint8 RGB in the VOC palette."""
    return PALETTE[np.asarray(labels, dtype=np.uint8)]


def palette_image(labels: np.ndarray) -> Image.Image:
    """(H, W) labels -> a mode "P" image carrying the VOC palette (pixel value = class index)."""
    image = Image.fromarray(np.asarray(labels, dtype=np.uint8), mode="P")
    image.putpalette(PALETTE.reshape(-1).tolist())
    return image


def save_label_png(path: str | Path, labels: np.ndarray) -> Path:
    """Write ``labels`` (H, W) as a VOC-palette PNG (readable back by ``segkit.data.read_mask``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    palette_image(labels).save(path)
    return path


def overlay(image: np.ndarray, labels: np.ndarray, *, alpha: float = 0.5) -> np.ndarray:
    """Blend the colour map of ``labels`` (H, W) onto ``image`` (H, W, 3) uint8.

    Background (0) and void (255) pixels keep the image untouched so objects stand out.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay alpha must be in [0, 1], got {alpha}")
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    colours = colorize(labels).astype(np.float32)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    objects = (labels != 0) & (labels != IGNORE_INDEX)
    out = image.copy()
    out[objects] = np.clip(blended[objects] + 0.5, 0, 255).astype(np.uint8)
    return out
