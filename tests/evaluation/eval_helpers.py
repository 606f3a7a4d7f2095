"""Config and checkpoint helpers of the evaluation tests (imported by conftest and tests)."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from segkit.data.synthetic import SyntheticSpec
from segkit.data.synthetic import classes as synthetic_classes

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
    classes = synthetic_classes(None, SyntheticSpec(num_classes=plain["data"]["num_classes"]))
    ckpt = {"hyper_parameters": hparams, "state_dict": state, "epoch": 0}
    torch.save({**ckpt, "segkit": {"classes": classes.to_dict()}}, path)
    return path
