"""Shared helpers for the training tests: tiny configs on a small synthetic set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")

#: A model and data set small enough for a few CPU steps per second.
TINY = [
    "data=synthetic",
    "data.dataset.num_train=32",
    "data.dataset.num_val=8",
    "data.dataset.min_size=64",
    "data.dataset.max_size=64",
    "data.crop_size=64",
    "data.batch_size=8",
    "data.val_batch_size=4",
    "data.num_workers=0",
    "backbone.width_mult=0.35",
    "trainer=cpu",
    "trainer.max_steps=4",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
]
TINY_DEEPLAB = ["model.aspp_channels=16", "model.decoder_channels=16", "model.low_level_channels=8"]


@pytest.fixture
def tiny_deeplab() -> list[str]:
    """Overrides that shrink DeepLabv3+'s ASPP and decoder (the default model)."""
    return list(TINY_DEEPLAB)


@pytest.fixture
def tiny_overrides() -> list[str]:
    """The small synthetic data / narrow model / few-steps overrides (no paths)."""
    return list(TINY)


@pytest.fixture
def config_dir() -> str:
    return CONFIG_DIR


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic data folder for the whole session (generated on first use)."""
    return tmp_path_factory.mktemp("synthetic")


@pytest.fixture
def compose_train(synthetic_root: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """compose_train(*overrides, run="run") -> the train config writing to tmp_path/run."""

    def _compose(*overrides: str, run: str = "run") -> DictConfig:
        base = [
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / run}",
            f"data.root={synthetic_root}",
            *TINY,
        ]
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("train", overrides=[*base, *overrides])

    return _compose


@pytest.fixture(scope="session")
def compose_train_at() -> Callable[..., DictConfig]:
    """compose_train_at(root, *overrides, run="run") -> the tiny DeepLabv3+ train config writing
    to root/run with its data under root/data (for fixtures wider than one test)."""

    def _compose(root: Path, *overrides: str, run: str = "run") -> DictConfig:
        base = [
            f"paths.root_dir={root}",
            f"paths.output_dir={root / run}",
            f"data.root={root / 'data'}",
            *TINY,
            *TINY_DEEPLAB,
        ]
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("train", overrides=[*base, *overrides])

    return _compose
