"""A run's first screen: a short header (what runs, where its folder is), the full config only on
request (``extras.print_config``), warnings silenced only on request (``extras.ignore_warnings``)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from segkit.cli.launch import apply_extras, run_header

ROOT = Path(__file__).resolve().parents[2]
ENTRY_CONFIGS = ("train", "evaluate", "predict", "analyze", "export", "inspect_data")


def _hydra_cfg(name: str, overrides: list[str], out: Path):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # a job's config holds no hydra node (HydraConfig has it)
    return cfg


@pytest.fixture(autouse=True)
def _no_hydra_config_afterwards():
    yield
    HydraConfig.instance().cfg = None


@pytest.mark.parametrize("name", ENTRY_CONFIGS)
def test_every_entry_config_has_the_extras_group(name: str) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(name)
    assert cfg.extras.print_config is False and cfg.extras.ignore_warnings is False


def test_header_names_the_task_choices_overrides_and_run_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = _hydra_cfg("train", ["experiment=quickstart", "model=fcn"], tmp_path / "logs" / "x")
    lines = run_header("train", cfg)
    assert lines[0] == (
        "segkit train (experiment=quickstart, model=fcn, backbone=mobilenetv2, data=synthetic, "
        "trainer=cpu)"
    )
    assert lines[1] == "  overrides: experiment=quickstart model=fcn"
    assert lines[2].startswith(f"  run folder: {Path('logs') / 'x'} (config.yaml there")


def test_config_printed_only_on_request(tmp_path, capsys) -> None:
    cfg = _hydra_cfg("train", ["experiment=quickstart"], tmp_path)
    apply_extras("train", cfg)
    out, err = capsys.readouterr()
    assert out.startswith("segkit train") and len(out.splitlines()) == 4
    assert out.splitlines()[3].startswith("  numerics: ")  # the CPU recipe's precision, NHWC
    assert "_target_" not in out + err
    cfg = _hydra_cfg("train", ["experiment=quickstart", "extras.print_config=true"], tmp_path)
    apply_extras("train", cfg)
    out, err = capsys.readouterr()
    assert "_target_: segkit.models.deeplabv3plus" in err


def test_header_on_rank_zero_only(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    apply_extras("train", _hydra_cfg("train", ["experiment=quickstart"], tmp_path))
    assert capsys.readouterr().out == ""


def test_ignore_warnings_on_request(tmp_path) -> None:
    for flag, expected in (("false", 1), ("true", 0)):
        cfg = _hydra_cfg("train", [f"extras.ignore_warnings={flag}"], tmp_path)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            apply_extras("train", cfg)
            warnings.warn("a dependency's deprecation", DeprecationWarning, stacklevel=1)
        assert len(seen) == expected


@pytest.mark.slow
def test_inspect_script_first_screen_and_its_json_in_the_run_folder(tmp_path: Path) -> None:
    """The README's `inspect_data.py ... inspect.json=stats.json`: header first, no config dump,
    stats.json and config.yaml in the run folder (not the working directory), paths printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(ROOT / "scripts" / "inspect_data.py"), "data=synthetic",
           "data.dataset.num_train=4", "data.dataset.num_val=2", "data.dataset.min_size=40",
           "data.dataset.max_size=48", "inspect.grid_samples=2", "inspect.json=stats.json"]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("segkit inspect_data (data=synthetic)\n")
    assert "_target_" not in done.stdout + done.stderr
    assert not (tmp_path / "stats.json").exists()
    (run,) = (tmp_path / "logs" / "inspect_data" / "runs").iterdir()
    for name in ("stats.json", "grid.png", "config.yaml"):
        assert (run / name).is_file()
    assert f"summary: {run / 'stats.json'}" in done.stdout
    assert f"mask overlay grid: {run / 'grid.png'}" in done.stdout
