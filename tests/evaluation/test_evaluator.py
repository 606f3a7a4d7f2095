"""The evaluation loop on a model whose predictions are known: answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from helpers.eval_models import RedChannelClassifier
from segkit.data import pad_collate
from segkit.evaluation.evaluator import EvalResult, Evaluator, best_and_worst
from segkit.evaluation.inference import InferenceSettings
from segkit.evaluation.trimap import boundary_map, trimap_levels

V = 255
# Image "a" (4x4): classes split left/right, bottom row void; one error per class.
TARGET_A = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [V, V, V, V]], np.uint8)
PRED_A = np.array([[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [1, 1, 1, 1]], np.uint8)
# Image "b" (2x6): everything predicted as class 1.
TARGET_B = np.array([[1] * 6, [0] * 6], np.uint8)
PRED_B = np.ones((2, 6), np.uint8)


def _sample(name: str, pred: np.ndarray, target: np.ndarray) -> dict:
    image = np.zeros((*pred.shape, 3), np.uint8)
    image[..., 0] = pred  # the red channel is what RedChannelClassifier predicts
    image[..., 1:] = 77
    return {"image": image, "mask": target, "id": name}


def _evaluate(batches, widths=(0, 10)) -> EvalResult:
    evaluator = Evaluator(
        RedChannelClassifier(2), num_classes=2, settings=InferenceSettings(), trimap_widths=widths
    )
    return evaluator.run(batches)


def test_known_answer_with_padding_in_the_batch():
    # One batch of a 4x4 and a 2x6 image: padded to 4x6. The padding's mean colour (red 124)
    # is predicted as class 1, but its mask is void, so it must not count.
    batch = pad_collate([_sample("a", PRED_A, TARGET_A), _sample("b", PRED_B, TARGET_B)])
    result = _evaluate([batch])
    # a: gt0 -> 5 right, 1 as class 1; gt1 -> 5 right, 1 as class 0.  b: gt0 -> 6 as 1; gt1 -> 6 right
    assert result.confusion.tolist() == [[5, 7], [1, 11]]
    scores = result.scores()
    assert scores["per_class_iou"] == pytest.approx([5 / 13, 11 / 19])
    assert scores["pixel_acc"] == pytest.approx(16 / 24)
    assert scores["mean_class_acc"] == pytest.approx((5 / 12 + 11 / 12) / 2)
    assert scores["fw_IoU"] == pytest.approx(0.5 * 5 / 13 + 0.5 * 11 / 19)
    # per image: a -> (5/7 + 5/7) / 2; b -> class 0 IoU 0/6, class 1 IoU 6/12
    assert result.image_ids == ["a", "b"]
    assert result.image_miou == pytest.approx([5 / 7, 0.25])
    assert best_and_worst(result, 1) == (["a"], ["b"])


def test_trimap_by_hand_and_independent_of_batching():
    single = _evaluate([pad_collate([_sample("a", PRED_A, TARGET_A)])])
    # Image a's all-void bottom row cannot be told from batch padding, so it is the image's end,
    # not a boundary: the width-0 band is columns 1-2 of rows 0-2 (gt0: 2 right, 1 wrong; gt1 same).
    assert single.trimap[0].tolist() == [[2, 1], [1, 2]]
    # Void on top (mirrored image) is an object outline: row 1 joins the band -> 8 labelled pixels,
    # each class 3 right and 1 wrong.
    top = _evaluate([pad_collate([_sample("t", PRED_A[::-1], TARGET_A[::-1])])])
    assert top.trimap[0].tolist() == [[3, 1], [1, 3]]
    assert single.trimap[10].tolist() == single.confusion.tolist()  # a wide band is everything
    separate = _evaluate(
        [
            pad_collate([_sample("a", PRED_A, TARGET_A)]),
            pad_collate([_sample("b", PRED_B, TARGET_B)]),
        ]
    )
    batched = _evaluate(
        [pad_collate([_sample("a", PRED_A, TARGET_A), _sample("b", PRED_B, TARGET_B)])]
    )
    # The padding must not create boundaries: bands (hence trimap IoU) are the same either way.
    for w in (0, 10):
        assert batched.trimap[w].tolist() == separate.trimap[w].tolist()
    assert batched.confusion.tolist() == separate.confusion.tolist()


def test_per_image_miou_ignores_void_and_absent_classes():
    target = np.array([[0, 0, 2, V], [V, V, V, V]], np.uint8)
    pred = np.array([[0, 1, 2, 2], [1, 1, 1, 1]], np.uint8)
    batch = pad_collate([_sample("x", pred[:1], target[:1]), _sample("y", pred[1:], target[1:])])
    evaluator = Evaluator(RedChannelClassifier(3), num_classes=3, settings=InferenceSettings())
    result = evaluator.run([batch])
    # image x: class 0 1/2, class 1 0/1, class 2 1/1 -> 1/2 ; image y all void -> NaN
    assert result.image_miou[0] == pytest.approx(0.5)
    assert np.isnan(result.image_miou[1])


def test_images_come_out_in_index_order_and_each_once():
    a, b = _sample("a", PRED_A, TARGET_A), _sample("b", PRED_B, TARGET_B)
    evaluator = Evaluator(RedChannelClassifier(2), num_classes=2, settings=InferenceSettings())
    # "b" (index 1) arrives first: the result lists "a" first all the same
    result = evaluator.run(
        [
            {**pad_collate([b]), "index": torch.tensor([1])},
            {**pad_collate([a]), "index": torch.tensor([0])},
        ]
    )
    assert result.image_ids == ["a", "b"]
    assert result.image_miou == pytest.approx([5 / 7, 0.25])
    twice = Evaluator(RedChannelClassifier(2), num_classes=2, settings=InferenceSettings())
    batch = {**pad_collate([a]), "index": torch.tensor([0])}
    with pytest.raises(ValueError, match=r"\['a'\] were evaluated more than once"):
        twice.run([batch, batch])


def test_agrees_with_torchmetrics_on_random_batches():
    g = torch.Generator().manual_seed(0)
    k, batches, preds, targets = 5, [], [], []
    for _ in range(3):
        pred = torch.randint(0, k, (2, 9, 11), generator=g)
        target = torch.randint(0, k, (2, 9, 11), generator=g)
        target[torch.rand(target.shape, generator=g) < 0.15] = V
        image = torch.full((2, 3, 9, 11), 77, dtype=torch.uint8)
        image[:, 0] = pred.to(torch.uint8)
        batches.append({"image": image, "mask": target, "id": ["x", "y"]})
        preds.append(pred)
        targets.append(target)
    evaluator = Evaluator(RedChannelClassifier(k), num_classes=k, settings=InferenceSettings())
    ours = evaluator.run(batches).scores()
    metric = MulticlassJaccardIndex(num_classes=k, ignore_index=V, average="none")
    ref = metric(torch.cat(preds), torch.cat(targets))
    assert ours["per_class_iou"] == pytest.approx(ref.tolist(), abs=1e-6)
    assert ours["mIoU"] == pytest.approx(float(ref.mean()), abs=1e-6)


def test_best_and_worst_never_repeat_an_image():
    result = EvalResult(
        confusion=torch.zeros(2, 2),
        image_ids=list("abcde"),
        image_miou=[0.1, 0.9, float("nan"), 0.5, 0.3],
    )
    assert best_and_worst(result, 2) == (["b", "d"], ["a", "e"])
    assert best_and_worst(result, 3) == (["b", "d", "e"], ["a"])
    assert best_and_worst(result, 0) == ([], [])


def test_trimap_bands_match_a_brute_force_chebyshev_distance():
    g = torch.Generator().manual_seed(3)
    target = torch.randint(0, 3, (2, 19, 23), generator=g)
    target[:, 5:9, 4:12] = V
    edge = boundary_map(target)
    ys, xs = torch.meshgrid(torch.arange(19), torch.arange(23), indexing="ij")
    for b in range(2):
        ey, ex = torch.nonzero(edge[b], as_tuple=True)
        dist = torch.maximum((ys[..., None] - ey).abs(), (xs[..., None] - ex).abs()).amin(
            -1
        )  # (H, W) Chebyshev distance to the nearest boundary pixel
        widths, level = trimap_levels(target, [0, 1, 3, 7, 12, 30])
        for i, w in enumerate(widths):
            assert torch.equal(level[b] <= i, dist <= w), w


def test_a_model_with_another_class_count_is_named():
    # A 3-class model scored as 2 classes: its predictions 2 would alias into other bins unnoticed.
    evaluator = Evaluator(RedChannelClassifier(3), num_classes=2, settings=InferenceSettings())
    with pytest.raises(
        ValueError, match=r"predicts 3 classes.*expects 2 \(Evaluator's num_classes\)"
    ):
        evaluator.run([pad_collate([_sample("a", PRED_A, TARGET_A)])])
