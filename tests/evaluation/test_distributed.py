"""The evaluator's matrices sum across DDP ranks (gloo, 2 CPU processes)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from eval_models import RedChannelClassifier

from segkit.evaluation.evaluator import Evaluator
from segkit.evaluation.inference import InferenceSettings


def _batches(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, 3, (2, 12, 10), generator=g)
    target = torch.randint(0, 3, (2, 12, 10), generator=g)
    target[:, :2] = 255
    image = torch.full((2, 3, 12, 10), 90, dtype=torch.uint8)
    image[:, 0] = pred.to(torch.uint8)
    return [{"image": image, "mask": target, "id": [f"{seed}a", f"{seed}b"]}]


def _evaluate(batches: list[dict]):
    evaluator = Evaluator(
        RedChannelClassifier(3), num_classes=3, settings=InferenceSettings(), trimap_widths=(1,)
    )
    return evaluator.run(batches)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        result = _evaluate(_batches(rank))  # each rank sees its own shard
        torch.save((result.confusion, result.trimap[1]), f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_ranks_sum_to_the_single_process_answer(tmp_path):
    # spawn, not fork: forking a process whose OpenMP pool is already running (earlier tests) can
    # deadlock the children.
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    single = _evaluate(_batches(0) + _batches(1))
    for rank in (0, 1):
        confusion, trimap = torch.load(tmp_path / f"rank{rank}.pt")
        assert torch.equal(confusion, single.confusion)
        assert torch.equal(trimap, single.trimap[1])
