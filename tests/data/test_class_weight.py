"""Median-frequency class weights: exact on a tiny CamVid tree, cached by content, and compared with
the weights SegNet shipped on the real CamVid train split."""

from __future__ import annotations

import os
import statistics
import time

import cv2
import numpy as np
import pytest

from helpers.camvid_tree import write_camvid
from segkit.data.camvid import CAMVID_INFO, CamVid
from segkit.data.class_weight import class_pixel_stats, count_pixels, median_frequency


@pytest.fixture
def train_split(tmp_path):
    return CamVid(write_camvid(tmp_path / "CamVid")).split("train")


def by_hand(ds) -> list[float]:
    """Eigen & Fergus's definition written out, one image at a time."""
    k = ds.num_classes
    pixels, present = np.zeros(k), np.zeros(k)
    for i in range(len(ds)):
        mask = ds.load_mask(i)
        counts = np.bincount(mask.ravel(), minlength=256)[:k]
        pixels += counts
        present += (counts > 0) * counts.sum()  # labelled pixels of the images where c appears
    f = pixels / present
    return list(np.median(f) / f)


def test_median_frequency_by_the_definition(train_split):
    stats = count_pixels(train_split, workers=2)
    assert stats.images == 5 and stats.images_present[6] == 4  # frame 0 has no SignSymbol
    np.testing.assert_allclose(median_frequency(stats.frequencies()), by_hand(train_split))
    assert stats.total_pixels == sum(stats.class_pixels)  # void is not counted


def test_cache_is_keyed_by_content(train_split, tmp_path):
    cache = tmp_path / "cache"
    first = class_pixel_stats(train_split, cache_dir=cache)
    again = class_pixel_stats(train_split, cache_dir=cache)
    assert again.seconds == 0.0 and again.class_pixels == first.class_pixels
    assert len(list(cache.glob("*.json"))) == 1
    path = train_split.mask_path(train_split.ids[0])
    mask = train_split.load_mask(0)
    mask[mask == 255] = 0  # the void pixels become Sky
    cv2.imwrite(str(path), mask)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = class_pixel_stats(train_split, cache_dir=cache)
    assert changed.key != first.key and changed.class_pixels[0] > first.class_pixels[0]
    assert len(list(cache.glob("*.json"))) == 2


def test_a_class_that_never_appears_is_named(train_split):
    freqs = count_pixels(train_split).frequencies()
    freqs[9] = 0.0
    with pytest.raises(ValueError, match=r"^median-frequency class weights: class Pedestrian"):
        median_frequency(freqs, CAMVID_INFO.names)


#: SegNet-Tutorial Models/segnet_basic_train.prototxt, class_weighting (label order 0..10).
SEGNET_WEIGHTS = (
    0.2595,
    0.1826,
    4.5640,
    0.1417,
    0.9051,
    0.3826,
    9.6446,
    1.8418,
    0.6823,
    6.2478,
    7.3614,
)
#: SignSymbol: SegNet's weight is 2.5x what its own definition gives on these files (also found in
#: alexgkendall/caffe-segnet issue #37, unexplained there); left out of the agreement check.
DIFFERS = {"SignSymbol"}


def segnet_variant(ds) -> list[float]:
    """The counting closest to SegNet's file (within 1-11 % on 10 of 11 classes; it gives
    alexgkendall/caffe-segnet issue #37's recount to the 4th decimal): void counted in the images'
    pixel totals, and void taken as a 12th "class" when the median is taken."""
    k = ds.num_classes
    pixels, present = np.zeros(k + 1), np.zeros(k + 1)
    for i in range(len(ds)):
        counts = np.bincount(ds.load_mask(i).ravel(), minlength=256)
        counts = np.r_[counts[:k], counts[255]]
        pixels += counts
        present += (counts > 0) * counts.sum()
    f = pixels / present
    return list(np.median(f) / f[:k])


def test_real_camvid_weights_against_segnet(camvid_real):
    train = CamVid(camvid_real).split("train")
    start = time.perf_counter()
    stats = count_pixels(train, workers=2)
    ours = median_frequency(stats.frequencies(), CAMVID_INFO.names)
    seconds = time.perf_counter() - start
    variant = segnet_variant(train)
    print(f"\nmedian-frequency weights, CamVid train ({stats.images} masks, {seconds:.2f} s)")
    print(f"{'class':12s} {'SegNet':>8s} {'segkit':>8s} {'ratio':>6s} {'12-median':>9s}")
    for name, s, o, v in zip(CAMVID_INFO.names, SEGNET_WEIGHTS, ours, variant, strict=True):
        print(f"{name:12s} {s:8.4f} {o:8.4f} {o / s:6.3f} {v:9.4f}")
    agree = [k for k, n in enumerate(CAMVID_INFO.names) if n not in DIFFERS]
    # segkit's weights (the paper's definition, void left out) differ from SegNet's by one common
    # factor, the median (SegNet's is taken over 12 labels, void included: 0.92x ours), plus at
    # most 11 % per class (see the variant): 25 % bounds both.
    for k in agree:
        assert ours[k] == pytest.approx(SEGNET_WEIGHTS[k], rel=0.25), CAMVID_INFO.names[k]
    # Scale-free: after dividing out the common factor the classes agree within 12 %.
    scale = statistics.median(ours[k] / SEGNET_WEIGHTS[k] for k in agree)
    for k in agree:
        assert ours[k] / scale == pytest.approx(SEGNET_WEIGHTS[k], rel=0.12), CAMVID_INFO.names[k]
    for k in agree:  # the variant: SegNet's own counting, same 12 % (Bicyclist 10.5 %, Car 6 %)
        assert variant[k] == pytest.approx(SEGNET_WEIGHTS[k], rel=0.12), CAMVID_INFO.names[k]
    sign = CAMVID_INFO.names.index("SignSymbol")
    assert SEGNET_WEIGHTS[sign] / ours[sign] > 2.2 and SEGNET_WEIGHTS[sign] / variant[sign] > 2.5
    assert seconds < 30
