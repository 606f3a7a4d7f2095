"""The CPU trainer at the hardware's speed: ``${cpu_precision:}`` picks bf16-mixed where the
processor computes bfloat16 natively (torch's own check is the oracle), channels_last is on, the
run's header says so, ``trainer.precision=32-true module.channels_last=false`` is today's exact
float32 path, and the NaN guard still stops a diverged bf16 run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

import segkit.cli.configs as configs
from segkit.cli import launch
from segkit.cli.launch import numerics_line
from segkit.tasks.train import build_module, build_trainer, train
from segkit.training import NonFiniteLossError

CPU_RECIPES = [
    ["trainer=cpu"],
    ["trainer=debug"],
    ["experiment=quickstart"],
    ["experiment=quickstart", "model=fcn"],
    ["experiment=comparison"],
    ["+sweep=design"],
]


def test_cpuinfo_flags_agree_with_torch() -> None:
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert bool(configs.cpu_bf16_flags()) == native
    assert configs.cpu_precision() == ("bf16-mixed" if native else "32-true")


def test_cpuinfo_parsing(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16 avx512_bf16 amx_tile\n")
    assert configs.cpu_bf16_flags(info) == ["avx512_bf16", "amx_bf16"]
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert configs.cpu_bf16_flags(info) == []
    assert configs.cpu_bf16_flags(tmp_path / "missing") == []  # not Linux: float32


def _compose(tmp: Path, *overrides: str):
    with initialize_config_dir(
        config_dir=str(Path(configs.CONFIG_DIR).resolve()), version_base="1.3"
    ):
        return compose("train", overrides=[f"paths.root_dir={tmp}", *overrides])


@pytest.mark.parametrize("flags", [["avx512_bf16"], []], ids=["bf16-cpu", "plain-cpu"])
@pytest.mark.parametrize("recipe", CPU_RECIPES, ids=lambda r: " ".join(r))
def test_cpu_recipes_pick_the_processors_precision(recipe, flags, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(configs, "cpu_bf16_flags", lambda *a: flags)
    monkeypatch.setattr(launch, "cpu_bf16_flags", lambda *a: flags)
    cfg = _compose(tmp_path, *recipe)
    assert cfg.trainer.accelerator == "cpu"
    assert cfg.trainer.precision == ("bf16-mixed" if flags else "32-true")
    assert cfg.module.channels_last is True
    line = numerics_line(cfg)
    assert line is not None and "channels_last" in line
    assert ("this CPU has avx512_bf16" if flags else "this CPU has no native bf16") in line


def test_the_default_trainer_and_the_exact_overrides_stay_float32(tmp_path) -> None:
    cfg = _compose(
        tmp_path, "trainer=cpu", "trainer.precision=32-true", "module.channels_last=false"
    )
    assert (cfg.trainer.precision, cfg.module.channels_last) == ("32-true", False)
    assert numerics_line(cfg) is None
    cfg = _compose(tmp_path)  # trainer=default: as before
    assert (cfg.trainer.precision, cfg.module.channels_last) == ("32-true", False)
    assert numerics_line(cfg) is None


def _conv_outputs(compose_train, *overrides: str) -> list[tuple[torch.dtype, bool]]:
    """(dtype, NHWC) of the first conv's outputs over a 2-step fit (train and validation)."""
    cfg = compose_train(
        *overrides, "trainer.max_steps=2", "logger=[]", "trainer.limit_val_batches=1"
    )
    module, trainer = build_module(cfg), build_trainer(cfg)
    first = next(m for m in module.model.modules() if isinstance(m, nn.Conv2d))
    seen: list[tuple[torch.dtype, bool]] = []
    first.register_forward_hook(
        lambda mod, args, out: seen.append(
            (out.dtype, out.is_contiguous(memory_format=torch.channels_last))
        )
    )
    from hydra.utils import instantiate

    trainer.fit(module, datamodule=instantiate(cfg.data, _convert_="all"))
    assert trainer.global_step == 2 and len(seen) >= 3
    return seen


@pytest.mark.skipif(not configs.cpu_bf16_flags(), reason="this CPU has no native bfloat16")
def test_trainer_cpu_trains_in_bf16_nhwc_by_default(compose_train, tiny_deeplab) -> None:
    seen = _conv_outputs(compose_train, *tiny_deeplab)
    assert all(s == (torch.bfloat16, True) for s in seen)


def test_exact_overrides_train_in_float32_contiguous(compose_train, tiny_deeplab) -> None:
    seen = _conv_outputs(
        compose_train, *tiny_deeplab, "trainer.precision=32-true", "module.channels_last=false"
    )
    assert all(s == (torch.float32, False) for s in seen)


def test_nan_guard_stops_a_diverged_bf16_run(compose_train, tiny_deeplab) -> None:
    cfg = compose_train(*tiny_deeplab, "module.lr=1e6", "trainer.max_steps=8",
                        "trainer.precision=bf16-mixed")  # fmt: skip
    with pytest.raises(NonFiniteLossError, match="became NaN/inf"):
        train(cfg)
