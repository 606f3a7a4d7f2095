"""evaluate draws its overlays from the predictions of its one pass (no second
inference), the same pictures as predicting the chosen images again."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import segkit.tasks.checkpoints as checkpoints
import segkit.tasks.evaluate as evaluate_task
from segkit.evaluation.counting import miou_of_matrices
from segkit.evaluation.drawn import BestWorstKeeper
from segkit.evaluation.evaluator import EvalResult, Evaluator, best_and_worst

FAST = ["eval.device=cpu", "eval.trimap_widths=[1]", "eval.num_workers=0"]


def _matrices(n: int, k: int, seed: int) -> torch.Tensor:
    """Per-image matrices with repeated scores (ties) and images without a valid pixel (NaN)."""
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randint(0, 4, (max(2, n // 3), k, k), generator=gen)
    cms = pool[torch.randint(0, len(pool), (n,), generator=gen)]
    cms[torch.rand(n, generator=gen) < 0.15] = 0
    return cms


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("count", [1, 2, 3])
def test_the_kept_candidates_hold_every_best_and_worst_image(seed, count):
    """Whatever the batching and the sharding over ranks, the ranks' keepers together hold the
    maps of exactly what ``best_and_worst`` chooses from the whole split's scores."""
    rng = random.Random(seed)
    n, k = rng.randint(1, 30), 3
    cms = _matrices(n, k, seed)
    preds = torch.randint(0, k, (n, 4, 5), generator=torch.Generator().manual_seed(seed))
    ranks = rng.randint(1, 3)
    keepers = [BestWorstKeeper(count, k) for _ in range(ranks)]
    order = list(range(n))
    rng.shuffle(order)  # any arrival order
    while order:
        size = rng.randint(1, 4)
        batch, order = order[:size], order[size:]
        keepers[rng.randrange(ranks)].add(batch, cms[batch], preds[batch])
    result = EvalResult(
        confusion=cms.sum(0), image_ids=[str(i) for i in range(n)],
        image_miou=miou_of_matrices(cms).tolist(), num_images=n,
    )  # fmt: skip
    best, worst = best_and_worst(result, count)
    kept = {key: m for keeper in keepers for key, m in keeper.maps(range(n)).items()}
    assert {int(i) for i in best + worst} <= set(kept)
    assert all(len(keeper.maps(range(n))) <= 2 * count for keeper in keepers)
    for key, label_map in kept.items():
        assert label_map.dtype == np.uint8 and np.array_equal(label_map, preds[key].numpy())


def _overlay_runs(monkeypatch, checkpoint, compose_eval, *extra):
    """Run evaluate, recording the images each forward saw, the rows drawn, the evaluator and
    the dataset."""
    seen, drawn, made = [], [], {}
    real_model, real_plot = checkpoints.inference_model, evaluate_task.plot_overlays
    real_dataset = evaluate_task._dataset

    def counting_model(*args, **kwargs):
        net = real_model(*args, **kwargs)
        net.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].shape[0]))
        return net

    class RecordedEvaluator(Evaluator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made["evaluator"] = self

    def recording_dataset(*args, **kwargs):
        made["dataset"] = real_dataset(*args, **kwargs)
        return made["dataset"]

    def recording_plot(rows, classes, path):
        drawn.extend(rows)
        return real_plot(rows, classes, path)

    monkeypatch.setattr(checkpoints, "inference_model", counting_model)  # the prelude's
    monkeypatch.setattr(evaluate_task, "Evaluator", RecordedEvaluator)
    monkeypatch.setattr(evaluate_task, "_dataset", recording_dataset)
    monkeypatch.setattr(evaluate_task, "plot_overlays", recording_plot)
    metrics = evaluate_task.evaluate(compose_eval(f"ckpt_path={checkpoint}", *FAST, *extra))
    return metrics, list(seen), drawn, made


def _two_pass_preds(metrics, made):
    """What the two-pass code drew: each chosen image predicted again, alone, by the same
    evaluator (model, backend, inference settings)."""
    dataset, preds = made["dataset"].split(metrics["settings"].get("split", "val")), []
    for image_id in [d["id"] for d in metrics["best_images"] + metrics["worst_images"]]:
        image, _ = dataset.load(dataset.ids.index(image_id))
        batch = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).contiguous()
        with torch.inference_mode():
            preds.append(made["evaluator"].predict(batch)[0].numpy().astype(np.uint8))
    return preds


def test_one_forward_per_image_and_the_overlays_of_the_two_pass_code(
    monkeypatch, checkpoint, compose_eval, tmp_path
):
    metrics, seen, drawn, made = _overlay_runs(
        monkeypatch, checkpoint, compose_eval, "eval.batch_size=1", "eval.num_overlays=2"
    )
    assert metrics["num_images"] == 6 and seen == [1] * 6  # no image predicted twice
    assert len(drawn) == len(metrics["best_images"]) + len(metrics["worst_images"]) == 4
    assert (tmp_path / "run" / "overlays.png").stat().st_size > 500
    for (title, image, mask, pred), again in zip(
        drawn, _two_pass_preds(metrics, made), strict=True
    ):
        assert pred.dtype == np.uint8 and pred.shape == mask.shape == image.shape[:2], title
        assert np.array_equal(pred, again), title


def test_multiscale_flip_keeps_the_scored_prediction(monkeypatch, checkpoint, compose_eval):
    extra = ["eval.batch_size=2", "eval.num_overlays=1", "eval.scales=[0.75,1.0]", "eval.flip=true"]
    metrics, seen, drawn, made = _overlay_runs(monkeypatch, checkpoint, compose_eval, *extra)
    assert sum(seen) == 6 * 2 * 2  # each image once per scale and flip: no extra pass
    again = _two_pass_preds(metrics, made)
    assert len(drawn) == len(again) == 2
    assert all(np.array_equal(row[3], pred) for row, pred in zip(drawn, again, strict=True))
