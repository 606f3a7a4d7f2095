"""Metrics with answers worked out by hand, and agreement with torchmetrics."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from segkit.evaluation.metrics import ConfusionMatrix, confusion_matrix, scores_from_confusion
from segkit.evaluation.trimap import TrimapMeter, boundary_map, trimap_bands

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
    with pytest.raises(ValueError, match="label 1 >= num_classes=1.*data.num_classes"):
        confusion_matrix(PRED, TARGET, num_classes=1)


def test_accumulator_sums_batches():
    meter = ConfusionMatrix(3)
    meter.update(PRED, TARGET)
    meter.update(PRED, TARGET)
    assert meter.matrix.tolist() == [[10, 2, 0], [2, 10, 0], [0, 0, 0]]
    meter.all_reduce()  # no process group: unchanged
    assert int(meter.matrix.sum()) == 24
    meter.reset()
    assert int(meter.matrix.sum()) == 0


def test_boundary_and_bands_by_hand():
    edge = boundary_map(TARGET)[0]
    assert edge.int().tolist() == [[0, 1, 1, 0], [0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    bands = trimap_bands(TARGET, [0, 1])
    assert torch.equal(bands[0], boundary_map(TARGET))
    assert bool(bands[1].all())


def test_trimap_iou_by_hand():
    meter = TrimapMeter(2, widths=[0, 1])
    meter.update(PRED, TARGET)
    narrow = scores_from_confusion(meter.matrices[0].matrix)
    wide = scores_from_confusion(meter.matrices[1].matrix)
    # width 0: 8 non-void edge pixels, each class 3 right, 1 missed, 1 false positive -> 3/5
    assert narrow["per_class_iou"] == pytest.approx([3 / 5, 3 / 5])
    assert wide["mIoU"] == pytest.approx(5 / 7)  # width 1 covers the whole 4x4 image


def test_negative_width_rejected():
    with pytest.raises(ValueError, match="eval.trimap_widths"):
        trimap_bands(TARGET, [-1])


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
    meter = TrimapMeter(2, widths=[0, 1])
    with pytest.raises(ValueError, match="num_classes=2"):
        meter.update(PRED, torch.where(TARGET == 1, 2, TARGET))
