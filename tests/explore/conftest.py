"""Two tiny trained checkpoints (FCN-8s and DeepLabv3+ on a narrow MobileNetV2, the synthetic
set at the quickstart's kind of scale, 2 steps each) shared by the explorer's tests, plus a
checkpoint with another class set and an unreadable one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segkit.cli.configs import compose_config

#: A few training steps of the quickstart recipe, shrunk: 64..80 px synthetic images.
TINY = [
    "experiment=quickstart",
    "backbone.width_mult=0.35",
    "data.dataset.num_train=4",
    "data.dataset.num_val=3",
    "data.dataset.min_size=64",
    "data.dataset.max_size=80",
    "data.crop_size=64",
    "data.batch_size=2",
    "data.val_batch_size=3",
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "logger=none",
]
MODELS = {
    "fcn": ["model=fcn"],
    "deeplabv3plus": [
        "model=deeplabv3plus",
        "model.aspp_channels=16",
        "model.decoder_channels=16",
        "model.low_level_channels=8",
    ],
}


@pytest.fixture(scope="session")
def explore_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("explore")


@pytest.fixture(scope="session")
def trained(explore_root: Path) -> dict[str, Path]:
    """``{"fcn": best.ckpt, "deeplabv3plus": best.ckpt}`` from real 2-step trainings."""
    from segkit.tasks.train import train

    out = {}
    for name, overrides in MODELS.items():
        run = explore_root / "runs" / name
        cfg = compose_config(
            "train",
            [
                f"paths.root_dir={explore_root}",
                f"paths.output_dir={run}",
                f"data.root={explore_root / 'data'}",
                *TINY,
                *overrides,
            ],
        )
        result = train(cfg)
        out[name] = Path(result["best_ckpt"])
    return out


@pytest.fixture(scope="session")
def other_classes(explore_root: Path, trained: dict[str, Path]) -> Path:
    """A DeepLabv3+ checkpoint in the train task's format with 4 classes instead of 7."""
    stored = torch.load(trained["deeplabv3plus"], map_location="cpu", weights_only=True)
    cfg = OmegaConf.create(stored["hyper_parameters"]["cfg"])
    cfg.data.num_classes = 4
    cfg.model.num_classes = 4
    model = instantiate(cfg.model)
    path = explore_root / "other" / "checkpoints" / "best.ckpt"
    path.parent.mkdir(parents=True)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    plain = OmegaConf.to_container(cfg, resolve=True)
    if "num_classes" in plain["data"]["dataset"]:  # the synthetic set: its class count
        plain["data"]["dataset"]["num_classes"] = 4
    classes = instantiate(plain["data"]["dataset"]).classes.to_dict()  # as training stores them
    ckpt = {"hyper_parameters": {"cfg": plain}, "state_dict": state, "epoch": 0}
    torch.save({**ckpt, "segkit": {"classes": classes}}, path)
    return path


@pytest.fixture(scope="session")
def garbage(explore_root: Path) -> Path:
    path = explore_root / "garbage.ckpt"
    path.write_bytes(b"this is not a checkpoint")
    return path
