"""Overrides the command-line tests compose their train configs with."""

from __future__ import annotations

#: Tiny synthetic data, a narrow network and a 4-step CPU run, without the bar and the logger.
TINY = [
    "data=synthetic", "data.dataset.num_train=8", "data.dataset.num_val=4",
    "data.dataset.min_size=64", "data.dataset.max_size=64", "data.crop_size=64",
    "data.batch_size=4", "data.val_batch_size=2", "data.num_workers=0", "backbone.width_mult=0.35",
    "trainer=cpu", "trainer.max_steps=4", "trainer.num_sanity_val_steps=0",
    "trainer.enable_model_summary=false", "callbacks.progress_bar=null", "logger=none",
]  # fmt: skip
#: The default model (DeepLabv3+) narrowed further, for the cases that really build it.
SMALL = ["model.aspp_channels=16", "model.decoder_channels=16", "model.low_level_channels=8"]

__all__ = ["SMALL", "TINY"]
