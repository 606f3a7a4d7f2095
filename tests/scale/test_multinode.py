"""Multi-node DDP on one machine: two torchrun "nodes" of one CPU process each meet at a c10d
rendezvous on localhost (what a user types on two machines, with the first one's address), train
a few steps through scripts/train.py, and log the val mIoU that one process computes on the same
checkpoint -- on an odd-sized val split, so one rank gets a padded repeat that must not count."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import OmegaConf

from helpers.scale import TINY, TRAIN, quiet_env
from segkit.data.batching import loader_images
from segkit.tasks.train import build_module
from segkit.training import read_checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_localhost_match_one_process(tmp_path: Path) -> None:
    run = tmp_path / "run"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{free_port()}",
                "--rdzv-id=segkit-test"]  # fmt: skip
    train = [str(TRAIN), *TINY, "trainer=ddp_cpu", "trainer.devices=1",
             "trainer.num_nodes=2", "data.dataset.num_val=7", f"data.root={tmp_path / 'data'}",
             f"paths.root_dir={tmp_path}", f"hydra.run.dir={run}"]  # fmt: skip
    nodes = [
        subprocess.Popen(
            [*torchrun, *train],
            cwd=tmp_path,
            env=quiet_env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=400) for node in nodes]
    for node, (_, err) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, err[-3000:]
    ranks = sorted(
        int(line.split("GLOBAL_RANK: ")[1].split(",")[0])
        for out, err in outputs
        for line in (out + err).splitlines()
        if "Initializing distributed: GLOBAL_RANK: " in line
    )
    assert ranks == [0, 1]  # one process per node, both in the same world

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["global_step"] == 3 and metrics["status"] == "finished"
    ckpt_path = run / "checkpoints" / "last.ckpt"
    ckpt = read_checkpoint(ckpt_path)
    # trainer=ddp_cpu's LayerSync plugin synchronised the batch norms across the two nodes
    assert any("DistributedBatchNormSync: " in out + err for out, err in outputs)

    # The same checkpoint, evaluated in this (single) process on the whole val split.
    cfg = OmegaConf.create(ckpt["hyper_parameters"]["cfg"])
    module = build_module(cfg)
    datamodule = instantiate(cfg.data, _convert_="all")
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         precision=cfg.trainer.precision)  # the run's numerics  # fmt: skip
    assert loader_images(datamodule.val_dataloader()) == 7  # every val image, in whole batches
    (result,) = trainer.validate(module, datamodule=datamodule, ckpt_path=str(ckpt_path))
    assert result["val/mIoU"] == pytest.approx(metrics["val/mIoU"], abs=1e-6)
    assert result["val/pixel_acc"] == pytest.approx(metrics["val/pixel_acc"], abs=1e-6)
