import numpy as np
import pytest
import torch

from segkit.constants import IGNORE_INDEX
from segkit.data import MEAN_UINT8, build_train_transform, pad_collate


def _sample(h=40, w=60):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, 5, (h, w), dtype=np.uint8)
    return image, mask


def test_train_transform_crops_and_pads_with_mean_and_void():
    image, mask = _sample()
    t = build_train_transform(crop_size=96, scale_range=(1.0, 1.0), hflip=False, seed=0)
    out = t(image=image, mask=mask)
    assert out["image"].shape == (96, 96, 3) and out["image"].dtype == np.uint8
    assert out["mask"].shape == (96, 96)
    # scale 1 and top-left padding: the original sits in the corner, the rest is mean / void
    np.testing.assert_array_equal(out["image"][:40, :60], image)
    np.testing.assert_array_equal(out["mask"][:40, :60], mask)
    assert (out["mask"][40:] == IGNORE_INDEX).all() and (out["mask"][:, 60:] == IGNORE_INDEX).all()
    assert (out["image"][50, 80] == np.array(MEAN_UINT8)).all()


def test_random_scale_range_is_respected():
    image, mask = _sample(100, 100)
    t = build_train_transform(crop_size=8, scale_range=(0.5, 2.0), seed=1)
    scale_crop = t.transforms[0]  # RandomScaleCrop: read the scaled size it draws
    shape = {"shape": image.shape}
    sides = [scale_crop.get_params_dependent_on_data(shape, {})["sh"] for _ in range(200)]
    assert 50 <= min(sides) < 60 and 190 < max(sides) <= 200


def test_flip_moves_image_and_mask_together():
    image, mask = _sample(32, 32)
    image[..., 0] = mask * 40  # the image encodes the mask, so any misalignment shows
    t = build_train_transform(crop_size=32, scale_range=(1.0, 1.0), hflip=True, seed=3)
    flipped = 0
    for _ in range(20):
        out = t(image=image, mask=mask)
        np.testing.assert_array_equal(out["image"][..., 0], out["mask"] * 40)
        flipped += not np.array_equal(out["mask"], mask)
    assert 0 < flipped < 20


def test_same_seed_same_augmentation():
    image, mask = _sample(80, 80)
    a = build_train_transform(crop_size=48, seed=5)(image=image, mask=mask)
    b = build_train_transform(crop_size=48, seed=5)(image=image, mask=mask)
    np.testing.assert_array_equal(a["image"], b["image"])


def test_bad_transform_params():
    with pytest.raises(ValueError, match="^scale_range must be"):
        build_train_transform(scale_range=(2.0, 0.5))
    with pytest.raises(ValueError, match="^crop_size must be"):
        build_train_transform(crop_size=0)


def test_pad_collate_pads_image_with_mean_and_mask_with_void():
    a_img, a_mask = _sample(20, 30)
    b_img, b_mask = _sample(25, 10)
    batch = pad_collate(
        [
            {"image": a_img, "mask": a_mask, "id": "a"},
            {"image": b_img, "mask": b_mask, "id": "b"},
        ]
    )
    assert batch["image"].shape == (2, 3, 25, 30) and batch["image"].dtype == torch.uint8
    assert batch["mask"].shape == (2, 25, 30) and batch["mask"].dtype == torch.uint8
    assert batch["id"] == ["a", "b"]
    np.testing.assert_array_equal(batch["image"][1, :, :25, :10].permute(1, 2, 0).numpy(), b_img)
    assert (batch["mask"][0, 20:] == IGNORE_INDEX).all() and (
        batch["mask"][1, :, 10:] == IGNORE_INDEX
    ).all()
    assert batch["image"][0, :, 22, 5].tolist() == list(MEAN_UINT8)
    np.testing.assert_array_equal(batch["mask"][0, :20].numpy(), a_mask)


def test_color_jitter_is_optional_and_photometric_only():
    image, mask = _sample(64, 64)
    plain = build_train_transform(crop_size=64, scale_range=(1.0, 1.0), hflip=False, seed=2)
    jitter = build_train_transform(
        crop_size=64, scale_range=(1.0, 1.0), hflip=False, color_jitter=0.4, seed=2
    )
    assert not any("ColorJitter" in type(t).__name__ for t in plain.transforms)
    np.testing.assert_array_equal(plain(image=image, mask=mask)["image"], image)
    changed = 0
    for _ in range(10):
        out = jitter(image=image, mask=mask)
        np.testing.assert_array_equal(out["mask"], mask)  # labels never move or change
        changed += not np.array_equal(out["image"], image)
    assert changed >= 5  # applied with p=0.8
