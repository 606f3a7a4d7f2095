"""Constants and helpers of the scale-out tests (imported by name: every test folder has a conftest)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "scripts" / "train.py"

#: A DeepLabv3+ / MobileNetV2 x0.35 on 64 px synthetic images: a few CPU steps per second.
TINY = [
    "data=synthetic",
    "data.dataset.num_train=16",
    "data.dataset.num_val=6",
    "data.dataset.min_size=64",
    "data.dataset.max_size=64",
    "data.crop_size=64",
    "data.batch_size=4",
    "data.val_batch_size=3",
    "data.num_workers=0",
    "data.check=off",
    "backbone.width_mult=0.35",
    "model.aspp_channels=16",
    "model.decoder_channels=16",
    "model.low_level_channels=8",
    "trainer=cpu",
    "trainer.max_steps=3",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
]


def quiet_env(**extra: str) -> dict[str, str]:
    """One thread per process (several run at once on a small CI machine), no warning noise."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **extra}
