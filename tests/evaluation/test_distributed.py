"""The evaluator's matrices reduce across DDP ranks (gloo, 2 CPU processes): global, trimap and per
image (boundary F1 included), in index order, also when a rank has no batch at all."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from helpers.eval_models import RedChannelClassifier
from segkit.evaluation.batching import shard
from segkit.evaluation.evaluator import Evaluator
from segkit.evaluation.inference import InferenceSettings

IDS = [f"img{i}" for i in range(6)]


def _batch(indices: list[int]) -> dict:
    g = torch.Generator().manual_seed(sum(indices) * 7 + len(indices))
    b = len(indices)
    pred = torch.randint(0, 3, (b, 12, 10), generator=g)
    target = torch.randint(0, 3, (b, 12, 10), generator=g)
    target[:, :2] = 255
    image = torch.full((b, 3, 12, 10), 90, dtype=torch.uint8)
    image[:, 0] = pred.to(torch.uint8)
    return {"image": image, "mask": target, "id": [IDS[i] for i in indices],
            "index": torch.tensor(indices)}  # fmt: skip


#: Two splits into batches: three batches (rank 0 gets two, rank 1 one); one batch (rank 1 none).
SPLITS = {"three": [[4, 1], [0, 5], [2, 3]], "one": [[3, 0, 2]]}


def _evaluate(batches: list[list[int]]):
    evaluator = Evaluator(
        RedChannelClassifier(3), num_classes=3, settings=InferenceSettings(), trimap_widths=(1,),
        image_ids=IDS,
    )  # fmt: skip
    return evaluator.run([_batch(b) for b in batches])


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        out = {}
        for name, batches in SPLITS.items():
            r = _evaluate(shard(batches, rank, 2))  # each rank sees its own share
            out[name] = (r.confusion, r.trimap[1], r.image_ids, r.image_confusion, r.image_trimap,
                         r.image_bf, r.scores()["BF"])  # fmt: skip
        torch.save(out, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters importing torch: ~30-50 s on the shared machine
def test_two_ranks_give_the_single_process_answer(tmp_path):
    # spawn, not fork: forking a process whose OpenMP pool is already running (earlier tests) can
    # deadlock the children.
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for name, batches in SPLITS.items():
        single = _evaluate(batches)
        assert single.image_ids == sorted(IDS[i] for b in batches for i in b)  # index order
        for rank in (0, 1):
            confusion, trimap, ids, per_image, per_image_trimap, image_bf, bf = torch.load(
                tmp_path / f"rank{rank}.pt"
            )[name]
            assert torch.equal(confusion, single.confusion), (name, rank)
            assert torch.equal(trimap, single.trimap[1])
            assert ids == single.image_ids
            assert torch.equal(per_image, single.image_confusion)
            assert torch.equal(per_image_trimap, single.image_trimap)
            torch.testing.assert_close(image_bf, single.image_bf, equal_nan=True, rtol=0, atol=0)
            assert bf == single.scores()["BF"] and 0 < bf < 1
