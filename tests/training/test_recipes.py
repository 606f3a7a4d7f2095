"""The VOC recipes and the quickstart compose, follow the protocol, name their source, and build."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

RECIPES = [
    "deeplabv3plus_xception65",
    "deeplabv3plus_mobilenetv2",
    "deeplabv3_mobilenetv2",
    "deeplabv3_xception65",
    "fcn8s_mobilenetv2",
    "fcn8s_xception65",
]


def _compose(config_dir: str, *overrides: str, tmp: Path):
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        return compose(
            "train", overrides=[f"paths.root_dir={tmp}", f"paths.output_dir={tmp}", *overrides]
        )


@pytest.mark.parametrize("recipe", RECIPES)
def test_voc_recipe(recipe: str, config_dir: str, tmp_path: Path) -> None:
    text = (Path(config_dir) / "experiment" / "voc" / f"{recipe}.yaml").read_text()
    assert "Target (verified" in text or "No published figure" in text
    cfg = _compose(config_dir, f"experiment=voc/{recipe}", "backbone.weights=null", tmp=tmp_path)
    assert cfg.data.dataset.train_split == "trainaug"
    assert (cfg.data.crop_size, cfg.data.batch_size) == (513, 16)
    assert (cfg.trainer.max_steps, cfg.module.lr, cfg.module.scheduler.power) == (30000, 0.007, 0.9)
    assert (
        cfg.module.optimizer._target_ == "torch.optim.SGD" and cfg.module.optimizer.momentum == 0.9
    )
    assert cfg.module.channels_last  # trainer=gpu
    assert cfg.trainer.max_steps % cfg.trainer.val_check_interval == 0  # last step is validated
    design = recipe.split("_")[0].replace("fcn8s", "fcn")
    assert cfg.model._target_ == f"segkit.models.{design}"
    assert cfg.backbone._target_ == f"segkit.backbones.{recipe.split('_')[1]}"
    model = instantiate(cfg.model)
    assert model.backbone.output_stride == cfg.model.output_stride


CAMVID = {
    "fcn32s": ("fcn", 32),
    "fcn8s": ("fcn", 32),
    "deeplabv3": ("deeplabv3", 16),
    "deeplabv3plus": ("deeplabv3plus", 16),
}


@pytest.mark.parametrize("recipe", sorted(CAMVID))
def test_camvid_recipes_differ_only_in_the_model(recipe: str, config_dir: str, tmp_path: Path):
    """Identical data, augmentation, loss, schedule and budget for every design; MobileNetV2
    from random init; the last step is validated (the learning curve ends on a point)."""
    cfg = _compose(config_dir, f"experiment=camvid/{recipe}", tmp=tmp_path)
    design, os_ = CAMVID[recipe]
    assert cfg.model._target_ == f"segkit.models.{design}" and cfg.model.output_stride == os_
    if design == "fcn":
        assert cfg.model.fcn_variant == recipe.removeprefix("fcn")
    assert cfg.backbone.weights is None and cfg.backbone.width_mult == 1.0
    assert cfg.trainer.max_steps % cfg.trainer.val_check_interval == 0
    shared = {k: v for k, v in OmegaConf.to_container(cfg).items() if k != "model"}
    reference = _compose(config_dir, "experiment=camvid/deeplabv3plus", tmp=tmp_path)
    assert shared == {k: v for k, v in OmegaConf.to_container(reference).items() if k != "model"}
    assert (
        cfg.data.dataset._target_ == "segkit.data.CamVid"
        and cfg.module.class_weight == "median_frequency"
    )
    model = instantiate(cfg.model, num_classes=11)
    assert model.backbone.output_stride == os_


@pytest.mark.parametrize("model", ["fcn", "deeplabv3plus", "deeplabv3"])
def test_quickstart_composes_for_each_design(model: str, config_dir: str, tmp_path: Path) -> None:
    cfg = _compose(config_dir, "experiment=quickstart", f"model={model}", tmp=tmp_path)
    assert cfg.data.dataset._target_ == "segkit.data.Synthetic" and cfg.trainer.accelerator == "cpu"
    assert cfg.trainer.max_steps % cfg.trainer.val_check_interval == 0
    instantiate(cfg.model)  # per-model presets only set keys the builder accepts


def test_hparams_search_and_slurm_configs(config_dir: str, tmp_path: Path) -> None:
    """The optuna search tunes keys that exist and optimises what train() returns; the SLURM
    launcher starts one task per GPU (what Lightning's SLURM detection expects)."""
    search = OmegaConf.load(Path(config_dir) / "hparams_search" / "voc_optuna.yaml")
    assert (
        search.optimized_metric == "val/mIoU_best"
    )  # a key of train()'s metrics (test_train_task)
    assert search.hydra.sweeper.direction == "maximize"
    cfg = _compose(config_dir, "experiment=voc/deeplabv3plus_mobilenetv2", tmp=tmp_path)
    for key in search.hydra.sweeper.params:
        assert OmegaConf.select(cfg, key) is not None, f"hparams_search tunes unknown key {key}"
    slurm = OmegaConf.load(Path(config_dir) / "hydra" / "launcher" / "slurm.yaml")
    assert "submitit_slurm" in slurm.defaults
    assert slurm.tasks_per_node == slurm.gpus_per_node


def test_optuna_search_composes_when_the_plugin_is_installed(
    config_dir: str, tmp_path: Path
) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path}",
                "hparams_search=voc_optuna",
            ],
            return_hydra_config=True,
        )
    assert cfg.hydra.sweeper.n_trials > 0


@pytest.mark.parametrize("group", ["default", "cpu", "gpu", "ddp", "ddp_cpu", "debug"])
def test_every_trainer_group_is_pure_trainer_arguments(
    group: str, config_dir: str, tmp_path
) -> None:
    cfg = _compose(config_dir, f"trainer={group}", tmp=tmp_path)
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters)
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    assert set(cfg.trainer) - {"_target_"} <= accepted


@pytest.mark.parametrize(
    ("overrides", "kind"),
    [
        ([], torch.optim.SGD),
        (["optimizer=adamw"], torch.optim.AdamW),
        (["optimizer=adamw", "module.optimizer.betas=[0.8,0.9]"], torch.optim.AdamW),
        (["module.optimizer._target_=torch.optim.RMSprop"], torch.optim.RMSprop),  # has momentum
    ],
)
def test_the_optimizer_group_builds_any_torch_optimizer(overrides, kind, config_dir, tmp_path):
    cfg = _compose(config_dir, *overrides, tmp=tmp_path)
    make = instantiate(cfg.module, _partial_=True, _convert_="all")
    module = make(model=torch.nn.Conv2d(3, 4, 1), num_classes=21)
    opt = module.optimizer_factory(module.parameters(), lr=cfg.module.lr)
    assert type(opt) is kind and opt.defaults["lr"] == cfg.module.lr


def test_switching_only_the_target_names_the_leftover_key(config_dir, tmp_path) -> None:
    """SGD's momentum under AdamW would be a TypeError deep in fit: refused at build, with the fix."""
    bad = _compose(config_dir, "module.optimizer._target_=torch.optim.AdamW", tmp=tmp_path)
    make = instantiate(bad.module, _partial_=True, _convert_="all")
    with pytest.raises(ValueError, match=r"AdamW takes no argument momentum.*drop it"):
        make(model=torch.nn.Conv2d(3, 4, 1), num_classes=21)
