"""Collate functions: ``stack_collate`` for equal-sized samples (every scored batch:
``segkit.data.batching``), ``pad_collate`` to pad samples of different sizes (training crops)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from segkit.constants import IGNORE_INDEX
from segkit.data.transforms import MEAN_UINT8


def stack_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack equal-sized samples into one batch laid out as ``pad_collate``'s (uint8 ``image``
    (B, 3, H, W), uint8 ``mask`` (B, H, W), ``id``), padding nothing: samples of different sizes
    are refused, naming them (whole-image batches hold one size, ``segkit.data.batching``)."""
    if not samples:
        raise ValueError("stack_collate got an empty batch")
    size = tuple(samples[0]["image"].shape[:2])
    for sample in samples[1:]:
        if tuple(sample["image"].shape[:2]) != size:
            other = tuple(sample["image"].shape[:2])
            raise ValueError(
                f"images {samples[0]['id']!r} ({size[0]}x{size[1]}) and {sample['id']!r} "
                f"({other[0]}x{other[1]}) were put in one batch of equal-sized images: the size "
                "read from a file header differs from the decoded image's"
            )
    images = np.stack([np.asarray(s["image"], dtype=np.uint8) for s in samples])
    masks = np.stack([np.asarray(s["mask"], dtype=np.uint8) for s in samples])
    return {
        "image": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        "mask": torch.from_numpy(masks),
        "id": [str(s["id"]) for s in samples],
    }


def pad_collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples of possibly different sizes into one batch, padding bottom/right.

    Args:
        samples: dicts ``{"image": uint8 (H, W, 3), "mask": uint8/int (H, W), "id": str}``.
    Returns:
        ``{"image": uint8 (B, 3, Hmax, Wmax), "mask": uint8 (B, Hmax, Wmax), "id": list[str]}``;
        padded image pixels hold the ImageNet mean (uint8), padded mask pixels hold 255 (void), so
        evaluation on whole images of different sizes never scores the padding. Masks travel as
        uint8 too (labels 0..K-1 < 255 and void = 255 fit; 8x less than int64 over the bus) and
        become int64 on the device (``SegDataModule.on_after_batch_transfer``, the evaluator).
    """
    if not samples:
        raise ValueError("pad_collate got an empty batch")
    h = max(int(s["image"].shape[0]) for s in samples)
    w = max(int(s["image"].shape[1]) for s in samples)
    images = torch.empty((len(samples), 3, h, w), dtype=torch.uint8)
    images[:] = torch.tensor(MEAN_UINT8, dtype=torch.uint8).view(1, 3, 1, 1)
    masks = torch.full((len(samples), h, w), IGNORE_INDEX, dtype=torch.uint8)
    for i, sample in enumerate(samples):
        image = torch.from_numpy(np.ascontiguousarray(sample["image"]))
        mask = torch.from_numpy(np.ascontiguousarray(sample["mask"]))
        ih, iw = image.shape[:2]
        images[i, :, :ih, :iw] = image.permute(2, 0, 1)
        masks[i, :ih, :iw] = mask
    return {"image": images, "mask": masks, "id": [str(s["id"]) for s in samples]}
