"""configs/sweep: every job of every ready sweep composes and builds a working model; the shared CPU
recipe matches experiment=quickstart; a real multirun writes folders that compare reads."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

import segkit.cli.fill as fill
from helpers.compare import ROOT
from segkit.cli.configs import compose_config
from segkit.cli.fill import fill_missing
from segkit.tasks.compare import compare

SWEEPS = sorted(p.stem for p in (ROOT / "configs" / "sweep").glob("*.yaml") if p.stem[0] != "_")
BASE = ["paths.root_dir=/tmp", "paths.output_dir=/tmp/unused"]


def _compose(overrides: list[str], hydra: bool = False):
    return compose_config("train", [*BASE, *overrides], return_hydra_config=hydra)


def jobs(sweep: str, *extra: str) -> list[list[str]]:
    """The override list of every job, as Hydra's basic sweeper expands hydra.sweeper.params."""
    params = _compose([f"+sweep={sweep}", *extra], hydra=True).hydra.sweeper.params
    axes = [[f"{k}={v}" for v in str(values).split(",")] for k, values in params.items()]
    return [[f"+sweep={sweep}", *job] for job in itertools.product(*axes)]


@pytest.mark.parametrize("n", [2, 3, 5])
def test_seed_axis_multiplies_any_sweep(n: int) -> None:
    for sweep in SWEEPS:
        base, seeded = jobs(sweep), jobs(sweep, f"+sweep/seeds=1-{n}")
        assert len(seeded) == n * len(base)
        assert {j[-1] for j in seeded} == {f"seed={s}" for s in range(1, n + 1)}


def test_the_issue_sweeps_exist() -> None:
    assert set(SWEEPS) == {
        "design",
        "crop",
        "separable",
        "act_between",
        "linear_bottleneck",
        "context",
    }
    assert len(jobs("design")) == 18  # 3 designs x 2 backbones x 3 output strides


@pytest.mark.parametrize(
    "sweep",
    # design has 18 jobs (Xception among them): ~10 s, so it runs with the slow tests
    [pytest.param(s, marks=pytest.mark.slow) if s == "design" else s for s in SWEEPS],
)
def test_every_job_builds_a_model_that_runs(sweep: str) -> None:
    seen = set()
    for overrides in jobs(sweep):
        cfg = _compose(overrides)
        assert (
            cfg.data.dataset._target_ == "segkit.data.Synthetic"
            and cfg.trainer.accelerator == "cpu"
        )
        model = instantiate(cfg.model).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 3, 64, 64))["out"]
        assert out.shape == (1, cfg.data.num_classes, 64, 64)
        seen.add(OmegaConf.to_yaml(cfg.model) + OmegaConf.to_yaml(cfg.backbone) + str(cfg.data))
    assert len(seen) == len(jobs(sweep))  # every job is a different configuration


@pytest.mark.parametrize("model", ["fcn", "deeplabv3", "deeplabv3plus"])
def test_sweep_models_equal_the_quickstart_presets(model: str) -> None:
    """Data, optimiser and trainer of both come from one file (experiment=quickstart composes
    sweep/_cpu_recipe); the per-model head widths are still two files (sweep/models/<name> and
    experiment/presets/quickstart/<model>), and so is the narrow MobileNetV2."""
    name = "fcn8s" if model == "fcn" else model
    sweep = _compose(["+sweep=design", f"+sweep/models={name}", "+sweep/backbones=mobilenetv2"])
    quick = _compose(["experiment=quickstart", f"model={model}"])
    for section in ("model", "backbone"):
        assert OmegaConf.to_container(sweep[section]) == OmegaConf.to_container(quick[section])


@pytest.mark.slow
def test_multirun_of_a_sweep_fill_then_compare(tmp_path: Path, monkeypatch) -> None:
    tiny = [
        "data.dataset.num_train=8",
        "data.dataset.num_val=4",
        "data.crop_size=64",
        "data.batch_size=4",
        "data.val_batch_size=4",
        "trainer.max_steps=1",
        "trainer.val_check_interval=1",
        "module.scheduler.warmup_steps=0",
        "callbacks.progress_bar=null",
        "logger=csv",
    ]
    # the command line narrows the sweep's own axis (aspp,pyramid_pooling,none) to two jobs
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "-m", "+sweep=context", *tiny]
    cmd += ["model.context=aspp,none", "+sweep/seeds=1-2"]  # 2 contexts x 2 seeds
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "logs" / "sweep_context" / "multiruns").iterdir()
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    monkeypatch.setattr(fill, "LATENCY_RUNS", 1)  # the figure is not under test
    monkeypatch.chdir(tmp_path)  # evaluation reads the synthetic data the jobs generated here
    filled = fill_missing([sweep_dir])
    assert sorted(p.name for p in filled) == ["0", "1", "2", "3"]
    assert fill_missing([sweep_dir]) == []  # nothing left to fill
    result = compare([sweep_dir], out_dir=tmp_path / "cmp")
    contexts = sorted(r.varies["model.context"] for r in result.records)
    assert contexts == ["aspp", "aspp", "none", "none"]
    # one row per context, its two seeds grouped
    assert sorted((g.varies["model.context"], g.seeds) for g in result.groups) == [
        ("aspp", [1, 2]),
        ("none", [1, 2]),
    ]
    assert all(r.train and r.train["global_step"] == 1 for r in result.records)
    assert all(r.eval and r.analysis and not r.missing for r in result.records)
    assert result.skipped_plots == []
