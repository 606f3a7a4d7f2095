"""A key a constructor does not take is one line naming the config key (issue "Nothing silently
succeeds", case 5).

``+trainer.max_step=100`` (what Hydra advises for the mistyped ``trainer.max_step=100``) used to
import torch and end in a 26-line traceback from ``Trainer.__init__() got an unexpected keyword
argument 'max_step'``, leaving a run folder with ``config.yaml``. ``run_task`` now checks every
``_target_`` node's keys against its target's signature once the task module is imported and
before the task builds or writes anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import segkit.tasks.train  # noqa: F401 - loads the targets' packages, as run_task's task import does
from segkit.cli.configs import CONFIG_DIR, compose_config
from segkit.cli.hints import check_target_arguments
from segkit.cli.launch import UserError, run_task


def _compose(name: str, tmp_path: Path, *overrides: str):
    return compose_config(
        name,
        [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", *overrides],
    )


@pytest.mark.parametrize(
    ("override", "line"),
    [
        ("+trainer.max_step=100",
         "trainer.max_step is not an argument of pytorch_lightning.Trainer: did you mean "
         "trainer.max_steps"),
        ("+model.aspp_channel=64",
         "model.aspp_channel is not an argument of segkit.models.deeplabv3plus: did you mean "
         "model.aspp_channels"),
        ("+module.optimizer.momentun=0.8",
         "module.optimizer.momentun is not an argument of torch.optim.SGD: did you mean "
         "module.optimizer.momentum?"),
        ("+backbone.zzz=1", "backbone.zzz is not an argument of segkit.backbones.mobilenetv2: "
         "(a config key under backbone must be one of its arguments"),
    ],
)  # fmt: skip
def test_a_key_its_target_does_not_take_is_named(override, line, tmp_path: Path) -> None:
    with pytest.raises(ValueError) as refused:
        check_target_arguments(_compose("train", tmp_path, "data=synthetic", override))
    assert str(refused.value).startswith(line)
    assert "\n" not in str(refused.value)


def test_the_removed_pretrained_key_is_refused(tmp_path: Path) -> None:
    """``backbone.weights`` is the one key for pretrained timm weights (``pretrained`` was an
    alias of ``weights=timm``)."""
    cfg = _compose(
        "train", tmp_path, "data=synthetic", "backbone=timm", "+backbone.pretrained=true"
    )
    with pytest.raises(ValueError) as refused:
        check_target_arguments(cfg)
    message = str(refused.value)
    assert message.startswith("backbone.pretrained is not an argument of segkit.backbones.")
    assert "\n" not in message


def test_the_train_task_refuses_before_writing_its_run_folder(tmp_path: Path) -> None:
    cfg = _compose("train", tmp_path, "data=synthetic", "+trainer.max_step=100")
    with pytest.raises(UserError, match=r"^trainer\.max_step is not an argument of"):
        run_task("train", cfg)
    assert not (tmp_path / "run").exists()  # no config.yaml: nothing that looks like a run


def _experiments() -> list[str]:
    folder = CONFIG_DIR / "experiment"
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml"))


@pytest.mark.parametrize(
    ("name", "overrides"),
    [("train", ["data=synthetic"]), ("analyze", []), ("inspect_data", ["data=synthetic"]),
     *[("train", [f"experiment={e}"]) for e in _experiments()]],
)  # fmt: skip
def test_every_shipped_config_passes(name, overrides, tmp_path: Path) -> None:
    check_target_arguments(_compose(name, tmp_path, *overrides))


def test_an_unexpected_argument_from_instantiate_names_the_key() -> None:
    """A node the task instantiates itself (not checked up front) fails in one line too."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from segkit.cli.hints import unexpected_argument

    cfg = OmegaConf.create({"data": {"_target_": "fractions.Fraction", "numeratr": 1}})
    with pytest.raises(Exception) as failed:
        instantiate(cfg.data)
    assert unexpected_argument(failed.value) == (
        "data.numeratr is not an argument of fractions.Fraction: remove it, or correct its name"
    )
