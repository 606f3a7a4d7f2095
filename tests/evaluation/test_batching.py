"""Size-sorted evaluation batches: less padding, every image once, the same metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from eval_models import Pointwise

from segkit.data import SyntheticSpec, VOCSegmentation, generate_synthetic
from segkit.evaluation.batching import eval_loader, image_sizes, shard, size_sorted_batches
from segkit.evaluation.evaluator import Evaluator
from segkit.evaluation.inference import InferenceSettings


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> VOCSegmentation:
    """9 synthetic images of 32..64 px per side, drawn independently: batches need padding."""
    root = tmp_path_factory.mktemp("mixed")
    spec = SyntheticSpec(seed=3, num_train=1, num_val=9, min_size=32, max_size=64, num_classes=4)
    generate_synthetic(root, spec)
    return VOCSegmentation(root, "val", num_classes=4)


def test_size_sorted_batches_by_hand():
    sizes = [(50, 40), (30, 30), (50, 40), (30, 60), (40, 40)]
    indices = [10, 11, 12, 13, 14]
    # by (H, W): 11 (30x30), 13 (30x60), 14 (40x40), 10 and 12 (50x40, split-list order kept)
    assert size_sorted_batches(indices, sizes, 2) == [[11, 13], [14, 10], [12]]
    assert size_sorted_batches(indices, sizes, 10) == [[11, 13, 14, 10, 12]]
    with pytest.raises(ValueError, match="eval.batch_size"):
        size_sorted_batches(indices, sizes, 0)


def test_image_sizes_read_from_headers(mixed):
    sizes = image_sizes(mixed, range(len(mixed)))
    assert sizes == [mixed.load(i)[0].shape[:2] for i in range(len(mixed))]
    assert len(set(sizes)) > 1  # the fixture really mixes sizes


def _pixels(loader) -> tuple[int, list[str]]:
    """Pixels the network sees (padding included) and the ids, over a loader."""
    total, ids = 0, []
    for batch in loader:
        total += batch["image"].shape[0] * batch["image"].shape[2] * batch["image"].shape[3]
        ids.extend(batch["id"])
    return total, ids


def test_sorted_loader_pads_less_and_covers_every_image_once(mixed):
    sorted_px, sorted_ids = _pixels(eval_loader(mixed, batch_size=3, sort_by_size=True))
    plain_px, plain_ids = _pixels(eval_loader(mixed, batch_size=3, sort_by_size=False))
    assert plain_ids == mixed.ids  # unsorted: split-list order
    assert sorted(sorted_ids) == sorted(mixed.ids) and len(sorted_ids) == len(mixed)
    assert sorted_px < plain_px
    # a limit keeps the first N of the split list, whatever the order they are batched in
    _, first = _pixels(eval_loader(mixed, batch_size=2, indices=range(4)))
    assert sorted(first) == sorted(mixed.ids[:4])


def _evaluate(model, loader, k: int = 4):
    evaluator = Evaluator(model, num_classes=k, settings=InferenceSettings(), trimap_widths=(1, 3))
    return evaluator.run(loader)


def test_order_does_not_change_the_metrics(mixed):
    # A model without spatial context: padding cannot change its answers, so batch-1, split-list
    # batches and size-sorted batches give the very same matrices and per-image scores.
    model = Pointwise().eval()
    one = _evaluate(model, eval_loader(mixed, batch_size=1))
    for sort in (False, True):
        result = _evaluate(model, eval_loader(mixed, batch_size=4, sort_by_size=sort))
        assert torch.equal(result.confusion, one.confusion)
        for w in (1, 3):
            assert torch.equal(result.trimap[w], one.trimap[w])
        by_id = dict(zip(result.image_ids, result.image_miou, strict=True))
        assert [by_id[i] for i in one.image_ids] == pytest.approx(one.image_miou, nan_ok=True)


def test_unreadable_image_header_is_named(tmp_path: Path):
    root = tmp_path / "broken"
    generate_synthetic(root, SyntheticSpec(num_train=1, num_val=2, min_size=32, max_size=40))
    dataset = VOCSegmentation(root, "val", num_classes=21)
    dataset.image_path(dataset.ids[1]).write_bytes(b"not an image")
    with pytest.raises(ValueError, match=f"{dataset.ids[1]}.jpg is unreadable or corrupt"):
        eval_loader(dataset, batch_size=2)


def test_shard_deals_out_whole_batches_each_once():
    batches = [[0, 1], [2, 3], [4, 5], [6]]
    shares = [shard(batches, r, 3) for r in range(3)]
    assert shares == [[[0, 1], [6]], [[2, 3]], [[4, 5]]]
    assert sorted(i for share in shares for b in share for i in b) == list(range(7))
    assert shard([[0]], 1, 2) == []  # a rank may get nothing
    with pytest.raises(ValueError, match="rank 2 is not in 0..1"):
        shard(batches, 2, 2)


def test_loader_batches_carry_their_dataset_index(mixed):
    for sort in (True, False):
        for batch in eval_loader(mixed, batch_size=4, sort_by_size=sort):
            assert batch["index"].dtype == torch.int64
            assert [mixed.ids[i] for i in batch["index"].tolist()] == batch["id"]
    # the two ranks' loaders hold the single-process batches, dealt out in turn
    whole = [b["index"].tolist() for b in eval_loader(mixed, batch_size=2)]
    ranks = [[b["index"].tolist() for b in eval_loader(mixed, batch_size=2, rank=r, world_size=2)]
             for r in (0, 1)]  # fmt: skip
    assert ranks == [whole[0::2], whole[1::2]]
