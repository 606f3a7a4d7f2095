"""``train`` task: build data, model and SegModule from the composed config, fit, write the run folder.

Run folder (``paths.output_dir``): ``config.yaml`` (resolved composed config), ``checkpoints/best.ckpt``
(highest ``val/mIoU``) and ``last.ckpt``, ``csv/metrics.csv``, ``tensorboard/``, ``metrics.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from segkit.tasks._common import (
    instantiate_group,
    instantiate_user,
    print_config,
    save_config,
    save_json,
    to_plain,
)
from segkit.training import SegModule, SyncBatchNormIfDistributed, check_resume_compatible

log = logging.getLogger(__name__)

#: Keys of the trainer group that are segkit switches, not ``pytorch_lightning.Trainer`` arguments.
TRAINER_EXTRAS: tuple[str, ...] = ("channels_last", "sync_batchnorm")


def build_module(cfg: DictConfig, plain_cfg: dict[str, Any] | None = None) -> SegModule:
    """The network (``cfg.model``) wrapped in the SegModule configured by ``cfg.module``."""
    network = instantiate_user(cfg.model)
    make_module = instantiate_user(cfg.module, _partial_=True, _convert_="all")
    return make_module(
        model=network,
        channels_last=bool(cfg.trainer.get("channels_last", False)),
        compile=bool(cfg.get("compile", False)),
        cfg=plain_cfg if plain_cfg is not None else to_plain(cfg),
    )


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    """``pytorch_lightning.Trainer`` from ``cfg.trainer`` plus the callbacks and loggers groups."""
    trainer_cfg = {k: v for k, v in to_plain(cfg)["trainer"].items() if k not in TRAINER_EXTRAS}
    callbacks = instantiate_group(cfg.get("callbacks"))
    if cfg.trainer.get("sync_batchnorm", False):
        callbacks.append(SyncBatchNormIfDistributed())
    loggers = instantiate_group(cfg.get("logger"))
    make_trainer = instantiate_user(trainer_cfg, _partial_=True, _convert_="all")
    return make_trainer(callbacks=callbacks, logger=loggers or False)


def _check_data(datamodule: pl.LightningDataModule) -> None:
    """Build the datasets now, so a missing data root surfaces as the data layer's own error
    before any Lightning machinery (and its stack) is involved. Only on global rank 0: processes
    started together by a cluster launcher must not generate/prepare data concurrently (Lightning
    itself prepares on rank 0 behind a barrier)."""
    if rank_zero_only.rank != 0:
        return
    datamodule.prepare_data()
    datamodule.setup("fit")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train (or resume with ``cfg.ckpt_path``) and return the final metrics (also ``metrics.json``)."""
    pl.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    plain = to_plain(cfg)
    if cfg.get("ckpt_path"):
        check_resume_compatible(cfg.ckpt_path, plain)
    print_config(cfg, sections=("data", "model", "module", "trainer"))
    save_config(cfg, output_dir)

    datamodule = instantiate_user(cfg.data, _convert_="all")
    _check_data(datamodule)
    module = build_module(cfg, plain)
    trainer = build_trainer(cfg)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    train_time = time.perf_counter() - start
    metrics = _summary(trainer, module, cfg, train_time)
    save_json(metrics, output_dir / "metrics.json")
    return metrics


def _summary(
    trainer: pl.Trainer, module: SegModule, cfg: DictConfig, train_time: float
) -> dict[str, Any]:
    scalars = {
        k: float(v) for k, v in trainer.callback_metrics.items() if isinstance(v, torch.Tensor)
    }
    checkpoint = trainer.checkpoint_callback
    best = getattr(checkpoint, "best_model_path", "") or None
    last = getattr(checkpoint, "last_model_path", "") or None
    return {
        **scalars,
        "val/mIoU_best": module.best_miou if module.best_miou != float("-inf") else None,
        "global_step": int(trainer.global_step),
        "train_time_s": round(train_time, 3),
        "params": sum(p.numel() for p in module.model.parameters()),
        "output_stride": int(cfg.model.output_stride),
        "model": str(cfg.model._target_).rsplit(".", 1)[-1],
        "backbone": str(cfg.backbone.get("_target_", "")).rsplit(".", 1)[-1],
        "best_ckpt": best,
        "last_ckpt": last,
        "output_dir": str(cfg.paths.output_dir),
    }


__all__ = ["TRAINER_EXTRAS", "build_module", "build_trainer", "train"]
