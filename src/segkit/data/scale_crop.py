"""Random scale + pad + random crop as one warp that computes only the crop's pixels.

``RandomScale -> PadIfNeeded -> RandomCrop`` resizes the whole image before keeping a crop of it:
on a 1024x2048 Cityscapes frame at scale 2 that is 8.4 M pixels resized to keep 0.6 M (crop
769). :class:`RandomScaleCrop` draws the same parameters (scale factor uniform in the range,
top-left padding to the crop, crop origin uniform over the padded image) and produces the crop
directly with one ``cv2.warpAffine`` (bilinear image, nearest mask, half-pixel centres as
``cv2.resize``; edges replicated as a resize does, then the padding filled with the image fill
/ mask void). The cost then depends on the crop, not on the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np


class RandomScaleCrop(A.DualTransform):
    """Scale by ``s ~ U(scale_range)``, pad bottom/right to ``crop_size``, take a random crop.

    Args:
        crop_size: side of the square output.
        scale_range: (min, max) scale factor.
        fill: image value of padded pixels (RGB).
        fill_mask: mask value of padded pixels (void).
        p: probability (1: always).

    Image (H, W, 3) uint8 -> (crop, crop, 3); mask (H, W) uint8 -> (crop, crop).
    """

    def __init__(
        self,
        crop_size: int,
        scale_range: Sequence[float] = (0.5, 2.0),
        fill: Sequence[int] = (0, 0, 0),
        fill_mask: int = 255,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.crop_size = int(crop_size)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.fill = tuple(int(c) for c in fill)
        self.fill_mask = int(fill_mask)

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        h, w = params["shape"][:2]
        s = self.py_random.uniform(*self.scale_range)
        sh, sw = max(1, round(h * s)), max(1, round(w * s))  # the scaled image's size
        top = int(max(sh - self.crop_size, 0) * self.py_random.random())
        left = int(max(sw - self.crop_size, 0) * self.py_random.random())
        return {"sy": sh / h, "sx": sw / w, "top": top, "left": left, "sh": sh, "sw": sw}

    def _warp(
        self, array: np.ndarray, p: dict[str, Any], interpolation: int, fill: Any
    ) -> np.ndarray:
        sx, sy, c = p["sx"], p["sy"], self.crop_size
        # dst = s * (src + 0.5) - 0.5 - origin: cv2.resize's pixel-centre convention, shifted
        matrix = np.array(
            [[sx, 0.0, 0.5 * sx - 0.5 - p["left"]], [0.0, sy, 0.5 * sy - 0.5 - p["top"]]]
        )
        out = cv2.warpAffine(
            array, matrix, (c, c), flags=interpolation, borderMode=cv2.BORDER_REPLICATE
        )
        out[p["sh"] - p["top"] :] = fill  # rows / columns beyond the scaled image: padding
        out[:, p["sw"] - p["left"] :] = fill
        return out

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return self._warp(img, params, cv2.INTER_LINEAR, self.fill)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return self._warp(mask, params, cv2.INTER_NEAREST, self.fill_mask)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("crop_size", "scale_range", "fill", "fill_mask")


__all__ = ["RandomScaleCrop"]
