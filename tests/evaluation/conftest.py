"""Shared fixtures: one tiny synthetic data set and one tiny checkpoint for the whole session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")

#: A narrow DeepLabv3+ on 7-class synthetic images of 64..96 px (different sizes: padding is exercised).
TINY_TRAIN = [
    "data=synthetic",
    "data.synthetic.num_train=4",
    "data.synthetic.num_val=6",
    "data.synthetic.min_size=64",
    "data.synthetic.max_size=96",
    "data.num_workers=0",
    "backbone.width_mult=0.35",
    "model.aspp_channels=16",
    "model.decoder_channels=16",
    "model.low_level_channels=8",
]


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(name, overrides=overrides)


def write_checkpoint(path: Path, cfg: DictConfig, model: torch.nn.Module) -> Path:
    """A checkpoint in the train task's format: resolved config + ``model.*`` weights."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    hparams = {"cfg": plain, "num_classes": plain["data"]["num_classes"]}
    torch.save({"hyper_parameters": hparams, "state_dict": state, "epoch": 0}, path)
    return path


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
