"""The GPU recipe's switches, kept alive on the CPU: bf16-mixed autocast and channels_last through
the train task's own builders (build_module / build_trainer from the composed config). The
convolutions must really run in bfloat16 on NHWC tensors while the weights stay float32."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from helpers.scale import ROOT, TINY
from segkit.tasks.train import build_module, build_trainer


@pytest.mark.slow  # 3-34 s on the loaded 2-core machine (alone it also generates the data)
def test_bf16_mixed_and_channels_last_train_on_the_cpu(scale_data: Path, tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[
            *TINY, "trainer.precision=bf16-mixed", "module.channels_last=true",
            "logger=[]", f"data.root={scale_data}", f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'run'}",
        ])  # fmt: skip
    module = build_module(cfg)
    trainer = build_trainer(cfg)
    convs = [m for m in module.model.modules() if isinstance(m, nn.Conv2d)]
    seen: list[tuple[bool, torch.dtype, bool]] = []

    def record(mod: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        seen.append(
            (mod.training, output.dtype, output.is_contiguous(memory_format=torch.channels_last))
        )

    hooks = [convs[0].register_forward_hook(record), convs[-1].register_forward_hook(record)]
    trainer.fit(module, datamodule=instantiate(cfg.data, _convert_="all"))
    for hook in hooks:
        hook.remove()

    assert trainer.global_step == 3
    train_calls = [s for s in seen if s[0]]
    assert len(train_calls) == 2 * 3 and any(not s[0] for s in seen)  # 3 steps + a validation
    assert all(dtype == torch.bfloat16 for _, dtype, _ in seen)  # autocast, train and val
    assert all(nhwc for _, _, nhwc in seen[::2])  # the stem conv's output is NHWC
    for conv in convs:  # master weights: float32, NHWC, finite
        assert conv.weight.dtype == torch.float32
        if conv.weight.dim() == 4 and conv.weight.shape[-1] > 1:
            assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        assert torch.isfinite(conv.weight).all()
    assert math.isfinite(float(trainer.callback_metrics["val/loss"]))
