"""The checkpoint file format: every checkpoint carries its format number, a checkpoint without one
(written before the number existed) is format 1, another number is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from segkit.training import SegModule
from segkit.training.checkpoint_file import (
    FORMAT,
    FORMAT_KEY,
    checkpoint_format,
    read_checkpoint,
)


def _checkpoint(**extra: object) -> dict:
    weights = {"model.conv.weight": torch.ones(2, 3, 1, 1)}
    return {"state_dict": weights, "hyper_parameters": {"cfg": {"seed": 1}}, **extra}


class TinySeg(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone, self.head = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.head(self.backbone(x))}


def test_the_module_writes_the_format_number() -> None:
    ckpt: dict = {}
    SegModule(TinySeg(), num_classes=3).on_save_checkpoint(ckpt)
    assert ckpt[FORMAT_KEY] == FORMAT == 1


def test_a_checkpoint_without_a_format_number_is_format_1(tmp_path: Path) -> None:
    """What segkit wrote before the number existed (the CamVid runs' checkpoints among them)."""
    path = tmp_path / "before.ckpt"
    torch.save(_checkpoint(), path)
    ckpt = read_checkpoint(path)
    assert FORMAT_KEY not in ckpt and checkpoint_format(ckpt) == 1
    assert torch.equal(ckpt["state_dict"]["model.conv.weight"], torch.ones(2, 3, 1, 1))


@pytest.mark.parametrize("found", [2, 0, "1"])
def test_another_format_is_refused_in_one_line(tmp_path: Path, found: object) -> None:
    path = tmp_path / "other.ckpt"
    torch.save(_checkpoint(**{FORMAT_KEY: found}), path)
    with pytest.raises(ValueError) as refused:
        read_checkpoint(path)
    message = str(refused.value)
    assert message == (
        f"checkpoint {path} is segkit checkpoint format {found!r}; this segkit reads format 1 "
        "only: use the segkit version that wrote it, or retrain"
    )
