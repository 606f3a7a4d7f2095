"""Resume policy: which model keys differ between a checkpoint and a run, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from segkit.training.checkpoint_file import checkpoint_config
from segkit.training.resume import check_resume_compatible, config_differences, flatten

BACKBONE = {"_target_": "segkit.backbones.mobilenetv2", "_partial_": True, "width_mult": 1.0}


def _cfg(**model_overrides) -> dict:
    model = {
        "_target_": "segkit.models.deeplabv3plus",
        "backbone": dict(BACKBONE),
        "num_classes": 21,
        "output_stride": 16,
        **model_overrides,
    }
    return {"model": model, "backbone": dict(BACKBONE), "data": {"num_classes": 21, "root": "a"}}


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": [1, 2], "d": None}


def test_same_model_other_data_root_is_compatible() -> None:
    other = _cfg()
    other["data"]["root"] = "elsewhere"
    assert config_differences(_cfg(), other) == {}


def test_differences_are_named_once() -> None:
    new = _cfg(output_stride=8)
    new["backbone"]["width_mult"] = 0.5
    new["model"]["backbone"]["width_mult"] = 0.5
    diffs = config_differences(_cfg(), new)
    assert diffs == {"backbone.width_mult": (1.0, 0.5), "model.output_stride": (16, 8)}


def test_pretrained_weights_path_may_differ() -> None:
    new = _cfg()
    new["backbone"]["weights"] = "imagenet.pth"
    assert config_differences(_cfg(), new) == {}


def test_check_resume_compatible_lists_keys(tmp_path: Path) -> None:
    path = tmp_path / "a.ckpt"
    torch.save({"hyper_parameters": {"cfg": _cfg()}, "state_dict": {}}, path)
    check_resume_compatible(path, _cfg())  # same config: no error
    with pytest.raises(
        ValueError, match=r"model\._target_: checkpoint='segkit\.models\.deeplabv3plus'"
    ):
        check_resume_compatible(path, _cfg(_target_="segkit.models.fcn"))


def test_checkpoint_without_segkit_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no segkit run config"):
        checkpoint_config({"state_dict": {}}, path="x.ckpt")
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        check_resume_compatible(tmp_path / "missing.ckpt", _cfg())
