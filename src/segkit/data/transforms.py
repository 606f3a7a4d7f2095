"""Train transforms (albumentations).

Transforms keep images uint8 (H, W, 3): uint8 is 4x less to move through worker queues and pinned
memory than float32. Images stay uint8 up to the model, which normalises them itself
(``segkit.models.Segmentor``: mean / std belong to the backbone's weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import albumentations as A

from segkit.constants import IGNORE_INDEX, IMAGENET_MEAN
from segkit.data.scale_crop import RandomScaleCrop

#: ImageNet mean as uint8 RGB: the fill of padded image pixels, so padding normalises to ~0.
MEAN_UINT8: tuple[int, int, int] = tuple(round(255 * m) for m in IMAGENET_MEAN)  # type: ignore[assignment]


def build_train_transform(
    *,
    crop_size: int = 513,
    scale_range: Sequence[float] = (0.5, 2.0),
    hflip: bool = True,
    color_jitter: float = 0.0,
    seed: int | None = None,
) -> A.Compose:
    """DeepLab training augmentation: random scale, pad to crop (mean / 255), random crop, flip.

    Args:
        crop_size: side of the square training crop (513 for VOC in the DeepLab papers).
        scale_range: (min, max) factor of the random rescale of image and mask.
        hflip: random horizontal flip with p=0.5.
        color_jitter: strength of brightness/contrast/saturation jitter (0 disables; hue fixed at 0
            so a colour-family class of the synthetic set keeps its label).
        seed: seed of the transform's random generators (workers reseed it, see ``seed_worker``).

    Returns a callable ``t(image=uint8 (H, W, 3), mask=uint8 (H, W)) -> {"image", "mask"}`` with
    outputs of shape (crop_size, crop_size, 3) and (crop_size, crop_size).
    """
    low, high = (float(s) for s in scale_range)
    if not 0 < low <= high:
        raise ValueError(f"scale_range must be (min, max) with 0 < min <= max, got {scale_range}")
    if crop_size < 1:
        raise ValueError(f"crop_size must be a positive integer, got {crop_size}")
    # Scale, pad (top-left, mean / void) and random crop as one warp of the crop's pixels
    # (segkit.data.scale_crop): the same draws as RandomScale -> PadIfNeeded -> RandomCrop
    # without resizing the whole image first (docs/benchmarks.md, datasets section).
    steps: list[A.BasicTransform] = [
        RandomScaleCrop(crop_size, (low, high), fill=MEAN_UINT8, fill_mask=IGNORE_INDEX)
    ]
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if color_jitter > 0:
        j = color_jitter
        steps.append(A.ColorJitter(brightness=j, contrast=j, saturation=j, hue=0.0, p=0.8))
    return A.Compose(steps, seed=seed)
