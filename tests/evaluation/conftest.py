"""Shared fixtures: one tiny synthetic data set and one tiny checkpoint for the whole session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from helpers.evaluation import TINY_TRAIN, compose_config, write_checkpoint


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A tiny DeepLabv3+ checkpoint (OS 16) whose stored data config points at ``data_root``."""
    run = tmp_path_factory.mktemp("train_run")
    cfg = compose_config(
        "train",
        [f"paths.root_dir={run}", f"paths.output_dir={run}", f"data.root={data_root}", *TINY_TRAIN],
    )
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    # Visible, non-uniform BN statistics so predictions vary over the image.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.running_mean.normal_(0.0, 0.2)
    return write_checkpoint(run / "last.ckpt", cfg, model)


@pytest.fixture
def compose_eval(tmp_path: Path) -> Callable[..., DictConfig]:
    """compose_eval(*overrides, name="evaluate") -> an entry config writing into tmp_path/run."""

    def _compose(*overrides: str, name: str = "evaluate") -> DictConfig:
        base = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}"]
        return compose_config(name, [*base, *overrides])

    return _compose
