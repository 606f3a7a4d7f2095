"""DistributedBatchNorm: two gloo ranks with half a batch each == one BatchNorm over the whole batch;
its LayerSync plugin converts and reverts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from segkit.training.sync_bn import (
    DistributedBatchNorm,
    DistributedBatchNormSync,
    convert_to_distributed_bn,
)


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    x = torch.randn(8, 4, 5, 5) * 3 + 1
    bn = DistributedBatchNorm(4)
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 2.0, 4))
    mine = x[rank * 4 : (rank + 1) * 4].clone().requires_grad_(True)
    y = bn(mine)
    (y * torch.arange(4.0).view(1, 4, 1, 1)).sum().backward()
    torch.save(
        {"y": y.detach(), "gx": mine.grad, "gw": bn.weight.grad, "rm": bn.running_mean},
        Path(out_dir) / f"rank{rank}.pt",
    )
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_match_one_full_batch(tmp_path: Path) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))

    torch.manual_seed(0)
    x = (torch.randn(8, 4, 5, 5) * 3 + 1).requires_grad_(True)
    ref = nn.BatchNorm2d(4)
    with torch.no_grad():
        ref.weight.copy_(torch.linspace(0.5, 2.0, 4))
    y = ref(x)
    (y * torch.arange(4.0).view(1, 4, 1, 1)).sum().backward()

    torch.testing.assert_close(torch.cat([r0["y"], r1["y"]]), y.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([r0["gx"], r1["gx"]]), x.grad, atol=1e-5, rtol=1e-5)
    # each rank holds its share of the weight gradient; DDP would sum/average them
    torch.testing.assert_close(r0["gw"] + r1["gw"], ref.weight.grad, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(r0["rm"], ref.running_mean)
    torch.testing.assert_close(r1["rm"], ref.running_mean)


def test_single_process_is_plain_batchnorm_and_keys_are_kept() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    net[1].running_mean.fill_(0.5)
    keys = set(net.state_dict())
    converted = convert_to_distributed_bn(net)
    assert isinstance(converted[1], DistributedBatchNorm)
    assert set(converted.state_dict()) == keys
    assert torch.equal(converted[1].running_mean, torch.full((4,), 0.5))
    x = torch.randn(2, 3, 8, 8)
    ref = nn.BatchNorm2d(4)
    ref.load_state_dict(converted[1].state_dict())
    feats = converted[0](x)
    torch.testing.assert_close(converted[1](feats), ref(feats))


def test_layer_sync_plugin_converts_and_reverts_to_the_original_classes() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.BatchNorm1d(144))
    plugin = DistributedBatchNormSync()
    converted = plugin.apply(net)
    assert [type(m) for m in converted if isinstance(m, _BatchNorm)] == [DistributedBatchNorm] * 2
    converted.train()(torch.randn(4, 3, 8, 8))  # statistics move while synchronised
    stats = {k: v.clone() for k, v in converted.state_dict().items()}
    reverted = plugin.revert(converted)
    assert [type(m) for m in reverted][1::2] == [nn.BatchNorm2d, nn.BatchNorm1d]
    for key, value in reverted.state_dict().items():
        assert torch.equal(value, stats[key]), key
