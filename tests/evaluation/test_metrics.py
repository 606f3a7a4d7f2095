"""Metrics with answers worked out by hand, and agreement with torchmetrics."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from segkit.evaluation.boundary import boundary_f1
from segkit.evaluation.counting import joint_counts
from segkit.evaluation.metrics import SegConfusion, confusion_matrix, scores_from_confusion
from segkit.evaluation.trimap import boundary_map, trimap_levels

V = 255
# Two classes split left/right, bottom row void. Prediction errs on one pixel of each class.
TARGET = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [V, V, V, V]]])
PRED = torch.tensor([[[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [1, 1, 1, 1]]])


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(PRED, TARGET, num_classes=3)
    # rows = truth: class 0 -> 5 right, 1 called "1"; class 1 -> 5 right, 1 called "0"; void rows unseen
    assert cm.tolist() == [[5, 1, 0], [1, 5, 0], [0, 0, 0]]


def test_scores_by_hand():
    s = scores_from_confusion(confusion_matrix(PRED, TARGET, num_classes=3))
    assert s["mIoU"] == pytest.approx(5 / 7)  # class 2 absent everywhere: NaN, not in the mean
    assert math.isnan(s["per_class_iou"][2])
    assert s["per_class_iou"][:2] == pytest.approx([5 / 7, 5 / 7])
    assert s["pixel_acc"] == pytest.approx(10 / 12)
    assert s["mean_class_acc"] == pytest.approx(5 / 6)
    assert s["fw_IoU"] == pytest.approx(5 / 7)


def test_class_predicted_but_absent_counts_as_zero_iou():
    pred = PRED.clone()
    pred[0, 0, 0] = 2  # a false positive of class 2, which is not in the ground truth
    s = scores_from_confusion(confusion_matrix(pred, TARGET, num_classes=3))
    assert s["per_class_iou"][2] == 0.0
    assert s["per_class_iou"][0] == pytest.approx(4 / 7)  # TP 4, FN 2, FP 1
    assert s["mIoU"] == pytest.approx((4 / 7 + 5 / 7 + 0) / 3)


def test_void_never_counts():
    pred = PRED.clone()
    pred[0, 3] = 0  # change predictions on the void row only
    assert torch.equal(confusion_matrix(pred, TARGET, 3), confusion_matrix(PRED, TARGET, 3))


def test_label_beyond_class_count_is_named():
    with pytest.raises(ValueError, match="label 1 >= num_classes=1.*the dataset's num_classes"):
        confusion_matrix(PRED, TARGET, num_classes=1)


def bands(target: torch.Tensor, widths: list[int]) -> dict[int, torch.Tensor]:
    """{w: (B, H, W) bool band of width w}, read off the level map (band i = level <= i)."""
    levels, level = trimap_levels(target, widths)
    return {w: level <= i for i, w in enumerate(levels)}


def test_accumulator_sums_batches():
    meter = SegConfusion(3)
    meter.update(PRED, TARGET)
    meter.update(PRED, TARGET)
    assert meter.compute().matrix.tolist() == [[10, 2, 0], [2, 10, 0], [0, 0, 0]]
    assert meter.compute().trimap.shape == (0, 3, 3)  # no widths: no bands
    meter.reset()
    assert int(meter.confusion.sum()) == 0


def test_metric_states_are_int64_on_the_device_and_sum_across_ranks():
    meter = SegConfusion(3, trimap_widths=[1], per_image=True)
    reductions = meter._reductions  # torchmetrics' record of each state's dist_reduce_fx
    assert {k: getattr(f, "__name__", f) for k, f in reductions.items()} == {
        "confusion": "dim_zero_sum",
        "trimap": "dim_zero_sum",
        "image_index": "dim_zero_cat",
        "image_counts": "dim_zero_cat",
    }
    meter = SegConfusion(3, per_image=True, boundary=True)
    reductions = {k: getattr(f, "__name__", f) for k, f in meter._reductions.items()}
    assert {k: reductions[k] for k in ("bf_sum", "bf_count", "image_bf")} == {
        "bf_sum": "dim_zero_sum", "bf_count": "dim_zero_sum", "image_bf": "dim_zero_cat",
    }  # fmt: skip
    assert meter.confusion.dtype == meter.trimap.dtype == torch.int64
    assert meter.to("meta").confusion.device.type == "meta"


def test_per_image_state_is_ordered_by_index_and_sums_to_the_global_matrix():
    g = torch.Generator().manual_seed(4)
    k = 3
    target = torch.randint(0, k, (5, 9, 7), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.2] = V
    pred = torch.randint(0, k, (5, 9, 7), generator=g)
    meter = SegConfusion(k, trimap_widths=[0, 2], per_image=True)
    # images arrive in the order 3, 0, 4 | 2, 1: the result is in index order
    meter.update(pred[[3, 0, 4]], target[[3, 0, 4]], torch.tensor([3, 0, 4]))
    meter.update(pred[[2, 1]], target[[2, 1]], torch.tensor([2, 1]))
    out = meter.compute()
    assert out.image_index.tolist() == [0, 1, 2, 3, 4]
    for b in range(5):
        assert torch.equal(
            out.image_matrix[b], confusion_matrix(pred[b : b + 1], target[b : b + 1], k)
        )
    assert torch.equal(out.image_matrix.sum(0), out.matrix)
    assert torch.equal(out.image_trimap.sum(0), out.trimap) and out.widths == (0, 2)
    with pytest.raises(ValueError, match=r"needs index of shape \(2,\)"):
        meter.update(pred[:2], target[:2])


def test_boundary_f1_state_per_image_in_index_order_and_without_per_image():
    g = torch.Generator().manual_seed(5)
    k = 3
    target = torch.randint(0, k, (4, 2, 3), generator=g).repeat_interleave(8, 1)
    target = target.repeat_interleave(8, 2)  # (4, 16, 24) blocks: real boundaries
    target[1] = V  # an image without a labelled pixel: no BF, left out of the mean
    pred = torch.where(torch.rand(target.shape, generator=g) < 0.8, target, 0).clamp(max=k - 1)
    meter = SegConfusion(k, per_image=True, boundary=True)
    meter.update(pred[[2, 0]], target[[2, 0]], torch.tensor([2, 0]))
    meter.update(pred[[3, 1]], target[[3, 1]], torch.tensor([3, 1]))
    out = meter.compute()
    expected = boundary_f1(pred, target, k)
    torch.testing.assert_close(out.image_bf, expected, equal_nan=True, rtol=0, atol=0)
    per_image = expected.nanmean(1)
    assert torch.isnan(per_image[1]) and out.bf.item() == pytest.approx(
        per_image[[0, 2, 3]].mean().item()
    )
    summed = SegConfusion(k, boundary=True)  # training validation: running sums only
    summed.update(pred[:2], target[:2])
    summed.update(pred[2:], target[2:])
    plain = summed.compute()
    assert plain.image_bf is None and plain.bf.item() == pytest.approx(out.bf.item())
    torch.testing.assert_close(plain.class_bf, out.class_bf, equal_nan=True)


def test_boundary_and_bands_by_hand():
    edge = boundary_map(TARGET)[0]
    assert edge.int().tolist() == [[0, 1, 1, 0], [0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    band = bands(TARGET, [0, 1])
    assert torch.equal(band[0], boundary_map(TARGET))
    assert bool(band[1].all())


def test_trimap_iou_by_hand():
    # Void on top, not at the bottom: the all-void bottom row would be read as batch padding
    # (the image's end, no boundary), see test_evaluator.
    pred, target = PRED.flip(1), TARGET.flip(1)
    meter = SegConfusion(2, trimap_widths=[0, 1])
    meter.update(pred, target)
    narrow = scores_from_confusion(meter.compute().trimap[0])
    wide = scores_from_confusion(meter.compute().trimap[1])
    # width 0: 8 non-void edge pixels, each class 3 right, 1 missed, 1 false positive -> 3/5
    assert narrow["per_class_iou"] == pytest.approx([3 / 5, 3 / 5])
    assert wide["mIoU"] == pytest.approx(5 / 7)  # width 1 covers the whole 4x4 image


def test_negative_width_rejected():
    with pytest.raises(ValueError, match="^trimap_widths must be >= 0"):
        trimap_levels(TARGET, [-1])


def test_agrees_with_torchmetrics_on_random_maps():
    g = torch.Generator().manual_seed(0)
    k = 5
    target = torch.randint(0, k, (4, 17, 23), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.1] = V
    pred = torch.randint(0, k, (4, 17, 23), generator=g)
    ours = scores_from_confusion(confusion_matrix(pred, target, k))
    ref = MulticlassJaccardIndex(num_classes=k, ignore_index=V, average="none")(pred, target)
    assert ours["per_class_iou"] == pytest.approx(ref.tolist(), abs=1e-6)
    assert ours["mIoU"] == pytest.approx(float(ref.mean()), abs=1e-6)


def test_trimap_meter_names_out_of_range_labels():
    meter = SegConfusion(2, trimap_widths=[0, 1])
    with pytest.raises(ValueError, match="num_classes=2"):
        meter.update(PRED, torch.where(TARGET == 1, 2, TARGET))


def test_trimap_partial_bands_by_hand():
    # 6x8: class 0 in columns 0-3, class 1 in columns 4-7; the boundary pixels are columns 3 and 4.
    # The prediction moves the edge one column right (column 4 predicted as class 0).
    target = torch.zeros(1, 6, 8, dtype=torch.long)
    target[..., 4:] = 1
    pred = torch.zeros_like(target)
    pred[..., 5:] = 1
    meter = SegConfusion(2, trimap_widths=[2, 0, 1])  # any order
    meter.update(pred, target)
    out = meter.compute()
    assert out.widths == (0, 1, 2)
    # w=0: columns 3-4.  gt0: 6 right.  gt1: 6 called 0.
    assert out.trimap[0].tolist() == [[6, 0], [6, 0]]
    # w=1: columns 2-5.  gt0: 12 right.  gt1: column 4 wrong, column 5 right.
    assert out.trimap[1].tolist() == [[12, 0], [6, 6]]
    # w=2: columns 1-6.  gt0: 18 right.  gt1: 6 wrong, 12 right.
    assert out.trimap[2].tolist() == [[18, 0], [6, 12]]
    miou = {
        w: scores_from_confusion(m)["mIoU"] for w, m in zip(out.widths, out.trimap, strict=True)
    }
    assert miou[0] == pytest.approx((6 / 12 + 0 / 6) / 2)
    assert miou[1] == pytest.approx((12 / 18 + 6 / 12) / 2)
    assert miou[2] == pytest.approx((18 / 24 + 12 / 18) / 2)
    whole = scores_from_confusion(confusion_matrix(pred, target, 2))["mIoU"]
    assert whole == pytest.approx((24 / 30 + 18 / 24) / 2)  # the narrower the band, the lower


def test_trimap_levels_are_the_narrowest_band():
    g = torch.Generator().manual_seed(5)
    target = torch.randint(0, 3, (2, 4, 5), generator=g).repeat_interleave(12, 1)
    target = target.repeat_interleave(12, 2)  # 12 px blocks: boundaries with room between them
    widths, level = trimap_levels(target, [4, 1, 2, 0])
    assert widths == [0, 1, 2, 4] and level.dtype == torch.int64
    # each band is the previous one dilated: check the level map against one 2w+1 max filter
    edge = boundary_map(target).float().unsqueeze(1)
    for i, w in enumerate(widths):
        band = torch.nn.functional.max_pool2d(edge, 2 * w + 1, stride=1, padding=w)[:, 0] > 0
        assert torch.equal(level <= i, band), w
    assert bool((level == len(widths)).any())  # some pixels lie in no band
    assert trimap_levels(target, [])[1].eq(0).all()


def test_out_of_range_labels_are_caught_wherever_they_are():
    # Label 2 with K=2 in the narrowest band of the first image: with the label as the most
    # significant digit of the bin index it cannot alias into a valid bin.
    target = torch.zeros(2, 6, 8, dtype=torch.long)
    target[:, :, 4:] = 1
    target[0, 0, 3] = 2
    pred = torch.zeros_like(target)
    with pytest.raises(ValueError, match="label 2 >= num_classes=2"):
        SegConfusion(2, trimap_widths=[0, 1]).update(pred, target)
    with pytest.raises(ValueError, match="label 2 >= num_classes=2"):
        confusion_matrix(pred, target, 2)


def test_joint_counts_sum_to_the_confusion_and_per_image_matrices():
    g = torch.Generator().manual_seed(2)
    k = 4
    target = torch.randint(0, k, (3, 9, 7), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.2] = V
    pred = torch.randint(0, k, (3, 9, 7), generator=g)
    level = torch.randint(0, 3, (3, 9, 7), generator=g)
    counts = joint_counts(pred, target, k, level=level, num_levels=3)
    assert counts.shape == (3, 3, k, k)
    assert torch.equal(counts.sum((0, 1)), confusion_matrix(pred, target, k))
    for b in range(3):
        one = confusion_matrix(pred[b : b + 1], target[b : b + 1], k)
        assert torch.equal(counts[:, b].sum(0), one)
        for lv in range(3):
            outside = level[b : b + 1] != lv
            ref = confusion_matrix(pred[b : b + 1], target[b : b + 1].masked_fill(outside, V), k)
            assert torch.equal(counts[lv, b], ref)
    # uint8 maps (as read from PNGs) give the same counts: no overflow in the bin arithmetic
    small = target.clone()
    small[small == V] = 0
    assert torch.equal(
        joint_counts(pred.to(torch.uint8), small.to(torch.uint8), k, level=level, num_levels=3),
        joint_counts(pred, small, k, level=level, num_levels=3),
    )
