"""A trainer group asking for hardware this machine lacks fails with one line saying what to use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segkit.tasks.train import build_trainer, check_devices

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_trainer_on_a_machine_without_gpu(compose_train, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for group in ("trainer=gpu", "trainer.accelerator=cuda"):
        with pytest.raises(ValueError, match=r"has no CUDA GPU: use trainer=cpu") as err:
            build_trainer(compose_train(group))
        assert "\n" not in str(err.value)


def test_more_devices_than_the_machine_has(compose_train, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(
        ValueError,
        match=r"trainer.devices=4 asks for 4 CUDA GPUs but this machine has 2: use "
        r"trainer.devices=2",
    ):
        build_trainer(compose_train("trainer=ddp", "trainer.devices=4"))
    with pytest.raises(ValueError, match="asks for 3 CUDA GPUs"):
        check_devices({"accelerator": "gpu", "devices": [0, 2]})
    check_devices({"accelerator": "gpu", "devices": "0,1"})  # fits
    check_devices({"accelerator": "gpu", "devices": -1})  # all of them
    check_devices({"accelerator": "cpu", "devices": 8})  # CPU devices are processes


def test_lightning_accelerator_errors_are_one_line(compose_train, monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"has no Apple MPS device: use trainer=cpu"):
        build_trainer(compose_train("trainer.accelerator=mps"))
    with pytest.raises(ValueError, match=r"the trainer group cannot run here: .*Use trainer=cpu"):
        build_trainer(compose_train("trainer.accelerator=tpu"))  # torch_xla is not installed


def test_script_prints_one_line_for_missing_devices(tmp_path: Path, tiny_overrides) -> None:
    """scripts/train.py with more GPUs than any test machine has: one line, exit 1, no traceback."""
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        *tiny_overrides,
        "trainer=ddp",
        "trainer.accelerator=gpu",
        "trainer.devices=64",
        f"data.root={tmp_path / 'data'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert "trainer" in line and ("trainer=cpu" in line or "trainer.devices=" in line)
    assert not (tmp_path / "data").exists()  # refused before any data was prepared


def test_lightnings_sync_batchnorm_on_cpus_names_ddp_cpu(compose_train) -> None:
    """torch's nn.SyncBatchNorm raises at the first step of a CPU DDP run: refused when built."""
    with pytest.raises(ValueError, match=r"runs on GPUs only: for DDP on CPUs use trainer=ddp_cpu"):
        build_trainer(compose_train("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1"))
