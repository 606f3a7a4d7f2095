"""Same-size evaluation batches: nothing padded, every image once, the same metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.eval_models import ContextNet
from segkit.data import SyntheticSpec, generate_synthetic, read_image, voc_split
from segkit.data.collate import stack_collate
from segkit.data.io import read_image_size
from segkit.evaluation.batching import eval_loader, image_sizes, same_size_batches, shard
from segkit.evaluation.evaluator import Evaluator
from segkit.evaluation.inference import InferenceSettings


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> voc_split:
    """12 synthetic images of 32..34 px per side, drawn independently: 9 sizes, some repeated."""
    root = tmp_path_factory.mktemp("mixed")
    spec = SyntheticSpec(seed=3, num_train=1, num_val=12, min_size=32, max_size=34, num_classes=4)
    generate_synthetic(root, spec)
    return voc_split(root, "val", num_classes=4)


def test_same_size_batches_by_hand():
    sizes = [(50, 40), (30, 30), (50, 40), (30, 60), (50, 40), (30, 30)]
    indices = [10, 11, 12, 13, 14, 15]
    # groups in the order of their first image: 50x40 (10, 12, 14), 30x30 (11, 15), 30x60 (13)
    assert same_size_batches(indices, sizes, 2) == [[10, 12], [14], [11, 15], [13]]
    assert same_size_batches(indices, sizes, 10) == [[10, 12, 14], [11, 15], [13]]
    assert same_size_batches(indices, sizes, 1) == [[10], [12], [14], [11], [15], [13]]
    with pytest.raises(ValueError, match="^batch_size must be an integer >= 1"):
        same_size_batches(indices, sizes, 0)


def test_image_sizes_read_from_headers(mixed):
    sizes = image_sizes(mixed, range(len(mixed)))
    assert sizes == [mixed.load(i)[0].shape[:2] for i in range(len(mixed))]
    assert 1 < len(set(sizes)) < len(sizes)  # the fixture mixes sizes, and repeats some


def test_loader_never_pads_and_covers_every_image_once(mixed):
    sizes = dict(zip(mixed.ids, image_sizes(mixed, range(len(mixed))), strict=True))
    for batch_size in (1, 3, 20):
        ids = []
        for batch in eval_loader(mixed, batch_size=batch_size):
            assert len(batch["id"]) <= batch_size
            assert {sizes[i] for i in batch["id"]} == {tuple(batch["image"].shape[-2:])}
            assert batch["mask"].shape[-2:] == batch["image"].shape[-2:]
            ids.extend(batch["id"])
        assert sorted(ids) == sorted(mixed.ids)
    # a limit keeps the first N of the split list, whatever the order they are batched in
    first = [i for b in eval_loader(mixed, batch_size=2, indices=range(4)) for i in b["id"]]
    assert sorted(first) == sorted(mixed.ids[:4])


def test_stack_collate_refuses_images_of_different_sizes():
    def sample(name, h, w):
        return {
            "image": np.zeros((h, w, 3), np.uint8),
            "mask": np.zeros((h, w), np.uint8),
            "id": name,
        }

    batch = stack_collate([sample("a", 4, 5), sample("b", 4, 5)])
    assert batch["image"].shape == (2, 3, 4, 5) and batch["mask"].dtype == torch.uint8
    with pytest.raises(ValueError, match=r"'a' \(4x5\) and 'c' \(5x4\)"):
        stack_collate([sample("a", 4, 5), sample("c", 5, 4)])


def test_header_size_follows_the_exif_orientation(tmp_path: Path):
    # cv2 turns an image by its EXIF orientation: the header size must say so, or a "same-size"
    # batch would mix 40x60 and 60x40 images.
    image = Image.fromarray(np.zeros((40, 60, 3), np.uint8))
    for orientation in (1, 3, 6, 8):
        exif = image.getexif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.jpg"
        image.save(path, exif=exif.tobytes())
        assert read_image_size(path) == read_image(path).shape[:2], orientation


def _evaluate(model, loader, k: int = 4):
    evaluator = Evaluator(model, num_classes=k, settings=InferenceSettings(), trimap_widths=(1, 3))
    return evaluator.run(loader)


def test_batch_size_does_not_change_the_metrics(mixed):
    # A model with spatial context and global pooling: batch-1 and batched evaluation give the
    # very same matrices and per-image scores, since nothing is padded.
    model = ContextNet().eval()
    one = _evaluate(model, eval_loader(mixed, batch_size=1))
    for batch_size in (2, 4, 9):
        result = _evaluate(model, eval_loader(mixed, batch_size=batch_size))
        assert torch.equal(result.confusion, one.confusion)
        for w in (1, 3):
            assert torch.equal(result.trimap[w], one.trimap[w])
        by_id = dict(zip(result.image_ids, result.image_miou, strict=True))
        assert [by_id[i] for i in one.image_ids] == pytest.approx(one.image_miou, nan_ok=True)


def test_unreadable_image_header_is_named(tmp_path: Path):
    root = tmp_path / "broken"
    generate_synthetic(root, SyntheticSpec(num_train=1, num_val=2, min_size=32, max_size=40))
    dataset = voc_split(root, "val", num_classes=21)
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
    for batch in eval_loader(mixed, batch_size=4):
        assert batch["index"].dtype == torch.int64
        assert [mixed.ids[i] for i in batch["index"].tolist()] == batch["id"]
    # the two ranks' loaders hold the single-process batches, dealt out in turn
    whole = [b["index"].tolist() for b in eval_loader(mixed, batch_size=2)]
    ranks = [[b["index"].tolist() for b in eval_loader(mixed, batch_size=2, rank=r, world_size=2)]
             for r in (0, 1)]  # fmt: skip
    assert ranks == [whole[0::2], whole[1::2]]
