"""The fused random scale + crop against resize-then-pad-then-crop on the same parameters."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest

from segkit.data.scale_crop import RandomScaleCrop


def _sample(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) % 64) * 4], -1).astype(np.uint8)
    mask = ((x // 20 + y // 16) % 19).astype(np.uint8)  # blocks: nearest differs at edges only
    return image, mask


def _reference(image, mask, p, crop, fill, fill_mask):
    """What RandomScale -> PadIfNeeded(top_left) -> RandomCrop computes for these parameters."""
    big = cv2.resize(image, (p["sw"], p["sh"]), interpolation=cv2.INTER_LINEAR)
    big_mask = cv2.resize(mask, (p["sw"], p["sh"]), interpolation=cv2.INTER_NEAREST)
    ph, pw = max(p["sh"], crop), max(p["sw"], crop)
    padded = np.empty((ph, pw, 3), np.uint8)
    padded[:] = fill
    padded[: p["sh"], : p["sw"]] = big
    padded_mask = np.full((ph, pw), fill_mask, np.uint8)
    padded_mask[: p["sh"], : p["sw"]] = big_mask
    rows, cols = slice(p["top"], p["top"] + crop), slice(p["left"], p["left"] + crop)
    return padded[rows, cols], padded_mask[rows, cols]


@pytest.mark.parametrize("scale", [0.5, 0.8, 1.0, 1.37, 2.0])
def test_matches_resize_pad_crop(scale):
    image, mask = _sample(120, 200)
    t = RandomScaleCrop(96, (scale, scale), fill=(1, 2, 3), fill_mask=255)
    t.set_random_seed(0)
    for _ in range(5):
        params = t.get_params_dependent_on_data({"shape": image.shape}, {})
        got = t.apply(image, **params), t.apply_to_mask(mask, **params)
        want = _reference(image, mask, params, 96, (1, 2, 3), 255)
        assert got[0].shape == (96, 96, 3) and got[1].shape == (96, 96)
        pad_want = want[1] == 255
        np.testing.assert_array_equal(got[1] == 255, pad_want)  # same padded area
        diff = np.abs(got[0].astype(int) - want[0].astype(int))
        assert diff.max() <= (0 if scale == 1.0 else 2)  # bilinear: rounding only
        agree = (got[1] == want[1]).mean()  # nearest: same labels but along class edges
        assert agree == 1.0 if scale == 1.0 else agree > 0.85


def test_in_a_compose_is_seeded_and_covers_the_range():
    image, mask = _sample(100, 100)
    a = A.Compose([RandomScaleCrop(8, (0.5, 2.0))], seed=3)
    b = A.Compose([RandomScaleCrop(8, (0.5, 2.0))], seed=3)
    np.testing.assert_array_equal(
        a(image=image, mask=mask)["image"], b(image=image, mask=mask)["image"]
    )
    t = a.transforms[0]
    sides = [t.get_params_dependent_on_data({"shape": image.shape}, {})["sh"] for _ in range(300)]
    assert 50 <= min(sides) < 60 and 190 < max(sides) <= 200
