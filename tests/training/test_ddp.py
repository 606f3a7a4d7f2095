"""DDP on the CPU (gloo, 2 processes) through scripts/train.py: trains, synchronises batch norm, and
logs the same val mIoU as the checkpoint evaluated in one process -- on an odd-sized val split (5
images, val batches of 2), which the unrepeated sampler shares out as 3 + 2 images: rank 0 runs
2 val batches, rank 1 one, and nothing waits for the other."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segkit.tasks.train import build_module
from segkit.training import read_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ddp_cpu_two_processes(tmp_path: Path, tiny_overrides) -> None:
    run = tmp_path / "ddp"
    data_root = tmp_path / "data"  # its own set: 5 val images (the shared one has 8)
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        *tiny_overrides,
        "model.aspp_channels=16",
        "model.decoder_channels=16",
        "model.low_level_channels=8",
        "trainer=ddp_cpu",
        "trainer.devices=2",
        "trainer.max_steps=4",
        "data.batch_size=4",
        "data.dataset.num_val=5",
        "data.val_batch_size=2",
        f"data.root={data_root}",
        f"paths.root_dir={tmp_path}",
        f"hydra.run.dir={run}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 4
    ckpt_path = run / "checkpoints" / "last.ckpt"
    ckpt = read_checkpoint(ckpt_path)
    # the trainer.plugins LayerSync converted the batch norms (logged once, by rank 0)
    output = proc.stdout + proc.stderr + (run / "train.log").read_text()
    assert re.search(r"DistributedBatchNormSync: [1-9]\d* batch norms synchronised", output)

    # The same checkpoint, evaluated in this (single) process on the whole val split.
    cfg = OmegaConf.create(ckpt["hyper_parameters"]["cfg"])
    module = build_module(cfg)
    datamodule = instantiate(cfg.data, _convert_="all")
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    assert sum(len(batch["id"]) for batch in datamodule.val_dataloader()) == 5
    (result,) = trainer.validate(module, datamodule=datamodule, ckpt_path=str(ckpt_path))
    assert result["val/mIoU"] == pytest.approx(metrics["val/mIoU"], abs=1e-6)
    assert result["val/pixel_acc"] == pytest.approx(metrics["val/pixel_acc"], abs=1e-6)


def test_val_loader_shares_images_out_once_and_names_a_too_small_split(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from segkit.data import SegDataModule, Synthetic

    spec = Synthetic(
        root=tmp_path, seed=0, num_train=1, num_val=3, min_size=32, max_size=32, num_classes=3
    )
    dm = SegDataModule(dataset=spec, num_classes=3,
                       num_workers=0, val_batch_size=1, check="off")  # fmt: skip
    shares = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        shares.append([b["id"][0] for b in dm.val_dataloader()])
    assert shares == [["val_000000", "val_000002"], ["val_000001"]]  # no repeat to even them out
    dm.trainer = SimpleNamespace(world_size=4, global_rank=0)
    with pytest.raises(ValueError, match="val split has 3 images for 4 DDP processes"):
        dm.val_dataloader()


def test_val_loader_deals_out_whole_same_size_batches(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from torch.utils.data import DistributedSampler

    from segkit.data import SegDataModule, Synthetic

    spec = Synthetic(
        root=tmp_path, seed=0, num_train=1, num_val=9, min_size=32, max_size=33, num_classes=3
    )
    dm = SegDataModule(dataset=spec, num_classes=3,
                       num_workers=0, val_batch_size=2, check="off")  # fmt: skip
    whole = [b["id"] for b in dm.val_dataloader()]
    assert max(len(ids) for ids in whole) == 2 and len(whole) > 2
    shares = []
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        loader = dm.val_dataloader()
        # a DistributedSampler, so Lightning keeps it instead of injecting one that repeats images
        assert isinstance(loader.sampler, DistributedSampler)
        shares.append([b["id"] for b in loader])
    assert shares == [whole[0::2], whole[1::2]]  # the single-process batches, dealt out in turn

    # fewer batches than ranks: smaller batches (equal sizes, so no score changes), one per rank
    same = Synthetic(
        root=tmp_path, seed=0, num_train=1, num_val=3, min_size=32, max_size=32, num_classes=3
    )
    dm = SegDataModule(dataset=same, num_classes=3,
                       num_workers=0, val_batch_size=4, check="off")  # fmt: skip
    assert [len(b["id"]) for b in dm.val_dataloader()] == [3]
    counts = []
    for rank in (0, 1, 2):
        dm.trainer = SimpleNamespace(world_size=3, global_rank=rank)
        counts.append([len(b["id"]) for b in dm.val_dataloader()])
    assert counts == [[1], [1], [1]]
