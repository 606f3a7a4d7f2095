"""Boundary F1 (SegNet sec. 3.3) on constructed masks with answers worked out by hand, and against a
per-image SciPy reference (exact Euclidean distance transform)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from segkit.evaluation.boundary import boundary_f1, label_boundary, labelled_extent

V = 255


def square(h: int, w: int, top: int, left: int, side: int = 40) -> torch.Tensor:
    """(1, H, W) int64: class 1 in a ``side`` square at (top, left), class 0 elsewhere."""
    out = torch.zeros(1, h, w, dtype=torch.int64)
    out[0, top : top + side, left : left + side] = 1
    return out


def bf(pred: torch.Tensor, target: torch.Tensor, k: int = 2, **kw) -> torch.Tensor:
    return boundary_f1(pred, target, k, **kw)


def test_square_shifted_within_theta_scores_one():
    # 360 x 480 (the CamVid size): diagonal 600 px, theta = 4.5 px; a 4 px shift is within it.
    gt = square(360, 480, 100, 200)
    pred = square(360, 480, 100, 204)
    assert bf(pred, gt)[0].tolist() == [1.0, 1.0]


def test_square_shifted_beyond_theta_by_hand():
    # 120 x 160: diagonal 200 px, theta = 1.5 px (d^2 <= 2.25). A 40 px square shifted 3 px right:
    # of its 156 predicted boundary pixels, 38 on the top row, 38 on the bottom row and the 2 end
    # pixels of the left column lie within theta of the ground-truth ring: P = 78 / 156 = 1/2, and
    # R = 1/2 by symmetry. Background (its ring just outside the square, 160 px): 39 + 39 + 2
    # within theta, P = R = 1/2. Both classes F1 = 1/2, BF = 1/2.
    gt = square(120, 160, 40, 60)
    pred = square(120, 160, 40, 63)
    f1 = bf(pred, gt)
    assert f1[0].tolist() == [0.5, 0.5]
    assert f1.nanmean(1).tolist() == [0.5]
    assert bf(square(120, 160, 40, 61), gt)[0].tolist() == [1.0, 1.0]  # 1 px < theta


def test_class_missing_from_prediction_scores_zero():
    gt = square(120, 160, 40, 60)
    pred = torch.zeros_like(gt)
    # class 1: not predicted -> 0; background: fills the prediction (no boundary) while the
    # ground truth's has one -> 0.
    assert bf(pred, gt)[0].tolist() == [0.0, 0.0]


def test_class_filling_the_image_in_both_scores_one_and_absent_classes_are_nan():
    gt = torch.full((1, 64, 64), 2)
    f1 = bf(gt.clone(), gt, k=4)[0]
    assert f1[2].item() == 1.0
    assert all(math.isnan(f1[c].item()) for c in (0, 1, 3))
    pred = gt.clone()
    pred[0, 10:20, 10:20] = 3  # class 3 is not in the ground truth: not scored, but class 2's
    f1 = bf(pred, gt, k=4)[0]  # prediction now has a boundary the ground truth lacks -> 0
    assert f1[2].item() == 0.0 and math.isnan(f1[3].item())


def test_void_in_the_ground_truth_is_removed_from_the_prediction():
    gt = torch.zeros(1, 120, 160, dtype=torch.int64)
    gt[0, :, 70:90] = V  # a void band inside the image
    pred = torch.zeros_like(gt)
    pred[0, 30:60, 75:85] = 1  # class 1 predicted on void only: not in the ground truth
    f1 = bf(pred, gt)[0]
    # class 0's predicted mask loses the void band, so its boundary is the ground truth's: 1
    # (kept, the prediction would have no boundary at all and score 0)
    assert f1[0].item() == 1.0 and math.isnan(f1[1].item())


def test_image_border_is_no_boundary():
    labels = torch.zeros(1, 30, 40, dtype=torch.int64)
    labels[..., :, :15] = 1  # touches the top, bottom and left borders
    edge = label_boundary(labels, torch.zeros(1, 30, 40, dtype=torch.bool))
    assert edge.sum().item() == 60  # only the two columns at the split
    assert edge[0, :, 14].all() and edge[0, :, 15].all()
    gt = labels.clone()
    pred = torch.zeros_like(gt)
    pred[..., :, :16] = 1  # the split one column off: beyond theta (0.375 px: exact matches only)
    f1 = bf(pred, gt)[0]  # no boundary on the border, so only the split columns count: 0
    assert f1.tolist() == [0.0, 0.0]


def test_padding_does_not_count_and_theta_is_the_images_own():
    # 60 x 80: diagonal 100 px, theta 0.75 px (exact matches only); its 120 x 160 padded batch
    # would have theta 1.5 px, under which this 1 px shift would score 1.
    gt = square(60, 80, 10, 30, side=50)  # touches the image's bottom and right
    gt[0, 40:, 70:] = 0
    pred = square(60, 80, 10, 31, side=50)
    alone = bf(pred, gt)
    assert 0 < alone[0, 1].item() < 1
    padded_gt = torch.full((1, 120, 160), V)
    padded_gt[:, :60, :80] = gt
    padded_pred = torch.randint(0, 2, (1, 120, 160))  # whatever the model says on the padding
    padded_pred[:, :60, :80] = pred
    assert torch.equal(bf(padded_pred, padded_gt), alone)
    sizes = torch.tensor([[60, 80]])
    assert torch.equal(bf(padded_pred, padded_gt, sizes=sizes), alone)


def _blobs(rng: np.random.Generator, h: int, w: int, k: int) -> np.ndarray:
    """Smooth random label maps (blocky regions) with some void."""
    coarse = rng.integers(0, k, size=(h // 8 + 1, w // 8 + 1))
    labels = np.kron(coarse, np.ones((8, 8), dtype=np.int64))[:h, :w]
    labels = ndimage.shift(labels, rng.uniform(-4, 4, 2), order=0, mode="nearest")
    labels[rng.random((h, w)) < 0.02] = V
    return labels


def _reference(pred: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """One unpadded image, one class at a time, with SciPy's exact distance transform."""
    h, w = target.shape
    r2 = (0.0075 * math.hypot(h, w)) ** 2
    void = target == V
    out = np.full(k, np.nan)
    for c in range(k):
        g, p = target == c, (pred == c) & ~void
        if not g.any():
            continue
        if not p.any():
            out[c] = 0.0
            continue
        eg, ep = (m & ~ndimage.binary_erosion(m, border_value=1) for m in (g, p))
        if not eg.any() and not ep.any():
            out[c] = 1.0
            continue
        if not eg.any() or not ep.any():
            out[c] = 0.0
            continue
        near_g = ndimage.distance_transform_edt(~eg) ** 2 <= r2
        near_p = ndimage.distance_transform_edt(~ep) ** 2 <= r2
        prec, rec = (ep & near_g).sum() / ep.sum(), (eg & near_p).sum() / eg.sum()
        out[c] = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
    return out


def test_batch_of_different_sizes_equals_one_at_a_time_and_the_reference():
    rng = np.random.default_rng(0)
    k, sizes = 4, [(90, 120), (64, 64), (40, 200)]
    pairs = []
    for h, w in sizes:
        target = _blobs(rng, h, w, k)
        target[-1, -1] = 0  # a labelled last pixel: the labelled extent is the image
        pred = np.where(rng.random((h, w)) < 0.9, target, rng.integers(0, k, (h, w)))
        pairs.append((np.where(pred == V, 0, pred), target))
    hm, wm = max(h for h, _ in sizes), max(w for _, w in sizes)
    pred_b = torch.zeros(len(sizes), hm, wm, dtype=torch.int64)
    gt_b = torch.full((len(sizes), hm, wm), V, dtype=torch.uint8)  # as pad_collate sends it
    for i, (p, t) in enumerate(pairs):
        pred_b[i, : p.shape[0], : p.shape[1]] = torch.from_numpy(p)
        gt_b[i, : t.shape[0], : t.shape[1]] = torch.from_numpy(t.astype(np.uint8))
    batched = bf(pred_b, gt_b, k=k)
    assert labelled_extent(gt_b).tolist() == [list(s) for s in sizes]
    for i, (p, t) in enumerate(pairs):
        alone = bf(torch.from_numpy(p)[None], torch.from_numpy(t)[None], k=k)[0]
        torch.testing.assert_close(batched[i], alone, equal_nan=True, rtol=0, atol=0)
        np.testing.assert_allclose(alone.numpy(), _reference(p, t, k), rtol=1e-12)
    assert not torch.isnan(batched.nanmean(1)).any()


def test_more_classes_than_one_bit_word():
    rng = np.random.default_rng(1)
    k = 70  # three words of 31 classes (ADE20K has 150)
    target = _blobs(rng, 96, 128, k)
    pred = np.where(rng.random(target.shape) < 0.85, target, rng.integers(0, k, target.shape))
    pred = np.where(pred == V, 0, pred)
    got = bf(torch.from_numpy(pred)[None], torch.from_numpy(target)[None], k=k)[0]
    np.testing.assert_allclose(got.numpy(), _reference(pred, target, k), rtol=1e-12)


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="differ"):
        boundary_f1(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5), 2)


#: Real CamVid annotations (research-only licence: read in place, never copied into the repository).
CAMVID = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "camvid"


def test_real_camvid_frames_batched_match_the_reference():
    annotations = sorted((CAMVID / "testannot").glob("*.png"))[::80]  # 3 frames, 2 sequences
    if not annotations:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CamVid is missing at {CAMVID.resolve()} (CI must have it)")
        pytest.skip(f"CamVid not found at {CAMVID.resolve()} (see its SOURCE.md)")
    target = np.stack([np.asarray(Image.open(f)) for f in annotations]).astype(np.int64)
    target[target == 11] = V  # CamVid's void
    pred = np.roll(target, (2, 5), axis=(1, 2))  # boundaries 5.4 px off: some within theta 4.5
    pred[pred == V] = 0
    got = bf(torch.from_numpy(pred), torch.from_numpy(target).to(torch.uint8), k=11)
    for i in range(len(annotations)):
        np.testing.assert_allclose(got[i].numpy(), _reference(pred[i], target[i], 11), rtol=1e-12)
    assert 0.2 < float(got.nanmean(1).mean()) < 0.95
